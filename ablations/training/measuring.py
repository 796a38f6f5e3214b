"""A measurement run (a task with `measures = True`, see ablations/tasks/measurement.py):
what `_fit` is to a trained run. Sets threads, seed and device as training does, calls
the task's `measure`, and hands back the summary that `run.write_outcome` stores."""
from __future__ import annotations

import os
from pathlib import Path

from .. import store
from ..config import model_config, train_config
from .device import device_usage, pick_device


def measure_in_dir(run_dir: Path, resolved: dict) -> dict:
    import torch

    from ..tasks import task_of

    cfg = train_config(resolved)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.accelerator)
    task = task_of(resolved, store.cache_dir(store.results_of(run_dir)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = task.measure(model_config(resolved), cfg, device)
    peak, name = device_usage(device)
    # threads and the machine's load beside the numbers: timings depend on both
    metrics = {**out.metrics, "threads": float(torch.get_num_threads()), "load_1m": load}
    return {"metrics": metrics, "params": out.params, "steps": out.steps,
            "tokens": out.tokens, "train_s": out.seconds, "peak_mem_mb": peak,
            "device": f"{name} x1"}

