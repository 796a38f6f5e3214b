"""Wall-clock timing by alternating rounds (medians), and the machine's matmul peak.

Every comparison runs in one process and alternates its contenders round by round
(A B C A B C ...), so a burst of load from other processes hits all of them alike;
the figure reported is the median round.
"""
from __future__ import annotations

import random
import statistics
import time
from typing import Callable

import torch


def alternate(contenders: dict[str, Callable[[], object]], rounds: int, repeat: int = 1,
              warmup: int = 1, sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each contender: `warmup` untimed calls each, then `rounds`
    rounds of `repeat` timed calls each, contenders alternating within every round.

    Each round takes the contenders in a new (seeded) order: contenders share the
    process's heap and caches, and whoever runs after whom changes what memory is warm.
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order, rng = list(contenders), random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            fn = contenders[name]
            t = time.perf_counter()
            for _ in range(repeat):
                fn()
            sync()
            times[name].append((time.perf_counter() - t) / repeat)
    return times


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1,
              sync: Callable[[], None] = lambda: None) -> list[float]:
    """Seconds of each of `repeats` timed calls of fn, after `warmup` untimed ones."""
    return alternate({"fn": fn}, rounds=repeats, warmup=warmup, sync=sync)["fn"]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def matmul_peak(device: str = "cpu", dtype=torch.float32, n: int = 2048, rounds: int = 5) -> float:
    """The best FLOP/s of an n x n x n matmul: what this machine's BLAS can reach."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    times = alternate({"mm": lambda: a @ b}, rounds=rounds, repeat=3, warmup=2, sync=sync)
    return 2 * n ** 3 / min(times["mm"])
