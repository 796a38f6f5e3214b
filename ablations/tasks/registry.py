"""TASKS, the registry of tasks, and what a task asks of an architecture: importable
without torch (grid validation and `ablate list` read names and declarations from the
catalogue beside this file; see transformer/registry.py)."""
from __future__ import annotations

from pathlib import Path

from transformer.registry import ARCH, Registry
from transformer.validation import ConfigError

# what a task class declares: its default arch, the arch capabilities it requires
# (transformer/registry.py: default_causal, seq2seq, recurrent), whether it measures, and
# the model readouts its targets assume (transformer/readout.py)
TASKS = Registry("task", Path(__file__).with_name("catalog.json"),
                 {"default_arch": "decoder", "requires": {}, "measures": False,
                  "writes": ("loss", "acc", "exact"), "bands": (), "readouts": ("token",)})


def suits(requires: dict, arch: str) -> bool:
    """Does arch have every capability the task requires?"""
    info = ARCH.info(arch)
    return all(info.get(k) == v for k, v in requires.items())


def suited_archs(task: str) -> list[str]:
    return [a for a in ARCH.names() if suits(TASKS.info(task)["requires"], a)]


def check_arch(task: str, arch: str) -> None:
    if not suits(TASKS.info(task)["requires"], arch):
        raise ConfigError("model.arch", f"task {task!r} does not suit arch {arch!r}; "
                          f"valid: {', '.join(suited_archs(task))}")
