"""A rough time estimate for `ablate run --dry-run`: enough to choose a scale and a number
of workers before paying for it, not a benchmark.

time per run = start-up + steps x max(per-step overhead, 6 x params x tokens per step /
achieved FLOP/s): the 6 is forward + backward of a dense model (Kaplan et al. 2020).
Tiny models are overhead-bound, large ones compute-bound; attention's T^2 term and
evaluation are ignored.
"""
from __future__ import annotations

from ..tasks import TASKS, make_params

# (achieved FLOP/s, seconds of overhead per step): fp32 on a laptop-class CPU at ablation
# sizes, and bf16 on one data-centre GPU (H100-class at ~40% of its dense peak)
DEVICES = {"cpu": (40e9, 3e-3), "gpu": (400e12, 8e-3)}
STARTUP_S = 3.0


def run_seconds(config: dict, params: int, device: str) -> float:
    task = config["task"]
    cls = TASKS.get(task["name"])
    positions = cls.max_positions(make_params(cls, task), config["model"]["arch"])
    train = config["train"]
    tokens = positions * train["batch_size"]
    flops, overhead = DEVICES[device]
    return STARTUP_S + train["steps"] * max(overhead, 6 * params * tokens / flops)


def device_of(config: dict, scale: str | None) -> str:
    acc = config["train"].get("accelerator", "cpu")
    return "gpu" if acc in ("gpu", "cuda") or (acc == "auto" and scale == "gpu") else "cpu"


def fmt_seconds(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.1f}h"
