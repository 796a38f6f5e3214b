"""Budgets checked before anything runs: memory (refused) and time (warned).

A width that does not fit fails each run allocating, one after the other; one that only
just fits can push the whole machine into swap or the OOM killer. So `ablate run`
estimates each distinct model's training memory and refuses (exit 2) a grid whose
largest run needs more than the machine has available, unless --ignore-memory. A run
the rough FLOP model (estimate.py) puts at more than a day is said on stderr, and
trains: a long run may be meant, a typo in train.steps not.

The estimate is deliberately simple (fp32, AdamW): 16 bytes a parameter (weights,
gradients, two moments) plus the activations autograd keeps: per layer and token about
16 residual-width tensors and 4 FFN-width ones, the attention weights (heads x T x T,
three copies: scores, softmax, dropout/grad), and the logits of an evaluation batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

from transformer.validation import ConfigError

from ..tasks import TASKS, make_params
from .budget import run_params
from .estimate import run_seconds

DAY_S = 86400.0
FP32 = 4


def memory_bytes(config: dict, params: int) -> int:
    """Rough training memory of one run: parameters, optimizer state, activations."""
    model, train, task = config["model"], config["train"], config["task"]
    cls = TASKS.get(task["name"])
    positions = cls.max_positions(make_params(cls, task), model["arch"])
    d = int(model.get("d_model") or 0)
    d_ff = int(model.get("d_ff") or 4 * d)
    layers = int(model.get("n_layers") or 1) * (2 if model["arch"] == "encoder_decoder" else 1)
    heads = int(model.get("n_heads") or 1)
    tokens = int(train["batch_size"]) * positions
    per_layer = tokens * (16 * d + 4 * d_ff) + 3 * train["batch_size"] * heads * positions ** 2
    logits = 2 * tokens * int(model.get("vocab_size") or 0)
    return 16 * params + FP32 * (layers * per_layer + logits)


def available_bytes(on_gpu: bool) -> int | None:
    """Memory a run can use here: the GPU's when it trains on one, else what the kernel
    says is available (MemAvailable) within this process's cgroup limit; None when
    unknown."""
    if on_gpu:
        try:
            import torch
            return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
        except RuntimeError:
            return None
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found.append(int(limit))
    except OSError:
        pass
    return min(found) if found else None


def check(runs, on_gpu: bool, ignore_memory: bool = False, stream=None) -> None:
    """Raise ConfigError (exit 2) for a run that cannot fit in memory; warn about runs
    estimated at more than a day. Reads nothing from disk but the machine's limits."""
    counted: dict[str, int] = {}
    worst, long_runs = None, []
    for run in runs:
        params = run_params(run, counted)
        need = memory_bytes(run.config, params)
        if worst is None or need > worst[0]:
            worst = (need, run)
        secs = run_seconds(run.config, params, "gpu" if on_gpu else "cpu")
        if secs > DAY_S:
            long_runs.append((secs, run))
    have = None if ignore_memory or worst is None else available_bytes(on_gpu)
    if have is not None and worst[0] > have:
        need, run = worst
        raise ConfigError("memory", f"run {run.run_id} ({run.label}) needs about "
                          f"{gib(need)} for parameters, optimizer state and activations, "
                          f"more than the {gib(have)} available on this "
                          f"{'GPU' if on_gpu else 'machine'}; lower model.d_model, "
                          "model.n_layers or train.batch_size, or pass --ignore-memory")
    if long_runs:
        secs, run = max(long_runs, key=lambda x: x[0])
        print(f"warning: {len(long_runs)} run(s) estimated at more than a day each, the "
              f"longest {secs / DAY_S:,.0f} days (run {run.run_id}, {run.label}, "
              f"train.steps={run.config['train']['steps']:,}; a rough FLOP model, see "
              "--dry-run); starting anyway", file=stream or sys.stderr, flush=True)


def gib(n: float) -> str:
    return f"{n / 2 ** 30:,.1f} GiB"
