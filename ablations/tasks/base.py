"""The task contract shared by every generated and text task.

A task turns (seed, step) into a batch on the device, so training never waits on a
DataLoader and a resumed run sees exactly the batches an uninterrupted one would.

Batch keys (all LongTensor on `device`):
  input  (B, T)   tokens fed to the model (decoder / encoder / rnn: model(input);
                  encoder_decoder: model(src, input))
  target (B, T)   the token to predict at each position; IGNORE where nothing is scored
  src    (B, S)   encoder_decoder only
Tasks may add extra keys (e.g. a per-example distance) that their `metrics` reads.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from transformer.registry import POSITIONAL
from transformer.validation import ConfigError, build, check_known

from .registry import TASKS, check_arch

IGNORE = -100


@dataclasses.dataclass
class TaskParams:
    """Base of every task's parameters. Subclasses add fields (declare categorical
    ones with `choice(...)`) and range checks in `validate`."""
    name: str = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            valid = f.metadata.get("choices")
            if valid is not None:
                check_known(f"task.{f.name}", getattr(self, f.name), valid)
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError('task.<field>', ...) for out-of-range values."""

    @staticmethod
    def require(ok: bool, field: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"task.{field}", message)


def choice(default: str, *others: str):
    """A categorical task parameter: the default and the other valid values."""
    return dataclasses.field(default=default, metadata={"choices": (default, *others)})


class Task:
    Params: type = TaskParams
    default_arch: str = "decoder"        # the arch a config gets when it names none
    requires: dict[str, Any] = {}        # arch capabilities it needs, e.g. {"seq2seq": False}
    model_defaults: dict[str, Any] = {}  # ModelConfig deltas under which it is learned
    train_defaults: dict[str, Any] = {}  # TrainConfig deltas (steps, lr, batch size, ...)
    measures: bool = False               # True: measured, not trained (see measurement.py)
    # what `metrics` returns (a measurement: what `measure` returns); the run stores each
    # as val_<m>/test_<m>, and grids may only name these (ablations/metric_names.py)
    writes: tuple[str, ...] = ("loss", "acc", "exact")
    # parts of an '@L' validation set scored apart: `metrics` may return `<m>@<band>`,
    # which the run stores as val_<m>@<L>_<band> (training/scoring.py)
    bands: tuple[str, ...] = ()
    # the model readouts its targets assume: "token" scores positions, "mean" one pooled
    # prediction per sequence (transformer/readout.py); another is a config error
    readouts: tuple[str, ...] = ("token",)

    def __init__(self, params: TaskParams, seed: int, arch: str, cache_dir: Path | None = None,
                 test_split: bool = False):
        self.params = params
        self.seed = seed
        self.arch = arch
        self.test_split = test_split         # hold out a test split beside val (text halves it)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        check_arch(params.name, arch)

    # -- what subclasses provide ------------------------------------------------
    @classmethod
    def vocab_size_for(cls, params: TaskParams, cache_dir: Path | None = None) -> int:
        """The vocabulary size the model needs (known before any data is built)."""
        raise NotImplementedError

    @classmethod
    def max_positions(cls, params: TaskParams, arch: str) -> int:
        """The longest input (or src) `arch` sees in training and main validation."""
        raise NotImplementedError

    @classmethod
    def check_config(cls, params: TaskParams, model) -> None:
        """Reject task/model combinations that cannot work (raise ConfigError naming
        the field), e.g. sequences longer than a bounded PE's table."""
        if model.readout not in cls.readouts:
            raise ConfigError("model.readout", f"task {params.name!r} scores its targets "
                              f"through readout {' or '.join(cls.readouts)}, got "
                              f"{model.readout!r}")
        needed = cls.max_positions(params, model.arch)
        if ("pos" not in model.ignored_fields() and POSITIONAL.info(model.pos)["bounded"]
                and needed > model.max_len):
            raise ConfigError("model.max_len", f"the {model.pos} position table has "
                              f"{model.max_len} entries but task {params.name!r} feeds "
                              f"{needed} positions")

    @property
    def vocab_size(self) -> int:
        return type(self).vocab_size_for(self.params, self.cache_dir)

    def make_batch(self, gen: torch.Generator, batch_size: int, split: str) -> dict:
        """One batch drawn with `gen` (a CPU generator); split is 'train', 'val' or
        'test' (a generated task draws every split alike: the generator differs)."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------
    def generator(self, *key) -> torch.Generator:
        return torch.Generator().manual_seed(stable_seed(self.params.name, self.seed, *key))

    def train_batch(self, step: int, batch_size: int, device, rank: int = 0) -> dict:
        batch = self.make_batch(self.generator("train", step, rank), batch_size, "train")
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def val_sets(self, n_batches: int, batch_size: int, device,
                 split: str = "val") -> dict[str, list[dict]]:
        """Fixed evaluation sets of `split` ('val', or 'test' when the task holds one out):
        '' is the main one; '@L' keys evaluate other lengths."""
        return {"": [{k: v.to(device) for k, v in
                      self.make_batch(self.generator(split, i), batch_size, split).items()}
                     for i in range(n_batches)]}

    def metrics(self, logits: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """loss (mean CE over scored positions), acc (token accuracy), exact (all scored
        positions of a row right). Tasks extend this with what their claim needs."""
        return sequence_metrics(logits, batch["target"])


def sequence_metrics(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    loss = F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=IGNORE)
    scored = target != IGNORE
    right = (logits.argmax(-1) == target) & scored
    acc = right.sum() / scored.sum().clamp(min=1)
    exact = (right | ~scored).all(dim=1).float().mean()
    return {"loss": loss, "acc": acc, "exact": exact}


def stable_seed(*key) -> int:
    """A seed from any tuple of str/int, stable across processes and Python versions."""
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little") >> 1


def build_task(params: dict, seed: int, arch: str, cache_dir: Path | None = None,
               test_split: bool = False) -> Task:
    cls = TASKS.get(params["name"])
    return cls(make_params(cls, params), seed, arch, cache_dir, test_split)


def task_of(resolved: dict, cache_dir: Path | None = None, seed: int | None = None) -> Task:
    """The task a resolved run config trains on (with a test split when it scores one)."""
    train = resolved["train"]
    return build_task(resolved["task"], train["seed"] if seed is None else seed,
                      resolved["model"]["arch"], cache_dir,
                      test_split=bool(train.get("test_batches")))


def make_params(cls, params: dict):
    """Validate a raw {field: value} dict (YAML or --set strings) into cls.Params."""
    return build(cls.Params, params, "task", what=f"field for task {params.get('name')!r}")
