"""Measurement tasks: runs that measure instead of train.

A task whose class sets `measures = True` is run by `ablate _run_one` through its
`measure(model, train, device)` instead of a Lightning fit (the one hook is in
`ablations/training/run.py`); what it returns is stored in result.json like a trained
run's outcome (metrics, parameter count, device, times), so grids, the store and the
report treat measurement runs like any other run. A measurement has no data: it draws
its own inputs. Timing takes `train.threads` threads (0: the slot's share of the cores,
as for training) and `train.batch_size` rows.
"""
from __future__ import annotations

import dataclasses

import torch

from .base import Task


@dataclasses.dataclass
class Measured:
    """What a measurement hands back: `metrics` become result.json's metrics (report
    columns); the rest fills its cost fields (steps, tokens and seconds timed)."""
    metrics: dict[str, float]
    params: int
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0


class Measurement(Task):
    measures = True

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None) -> int:
        return 2                       # no tokens: the model's embedding goes unused

    def make_batch(self, gen, batch_size, split):
        raise TypeError(f"task {self.params.name!r} is a measurement: it has no batches")

    def measure(self, model, train, device: torch.device) -> Measured:
        """model: ModelConfig; train: TrainConfig (batch_size, seed, precision, ...)."""
        raise NotImplementedError
