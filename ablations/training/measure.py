"""A measurement run (a task with `measures = True`, see ablations/tasks/measure.py):
what `_fit` is to a trained run. Sets threads, seed and device as training does, calls
the task's `measure`, and hands back the summary that `run.write_outcome` stores."""
from __future__ import annotations

import os
import resource
from pathlib import Path

from .. import store
from ..config import model_config, train_config


def measure_in_dir(run_dir: Path, resolved: dict) -> dict:
    import torch

    from ..tasks import build_task

    cfg = train_config(resolved)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.accelerator)
    task = build_task(resolved["task"], cfg.seed, resolved["model"]["arch"],
                      store.cache_dir(store.results_of(run_dir)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = task.measure(model_config(resolved), cfg, device)
    on_gpu = device.type == "cuda"
    peak = (torch.cuda.max_memory_allocated() / 2**20 if on_gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    name = (torch.cuda.get_device_name(device) if on_gpu
            else f"{device.type} ({torch.get_num_threads()} threads)")
    # threads and the machine's load beside the numbers: timings depend on both
    metrics = {**out.metrics, "threads": float(torch.get_num_threads()), "load_1m": load}
    return {"metrics": metrics, "params": out.params, "steps": out.steps,
            "tokens": out.tokens, "train_s": out.seconds, "peak_mem_mb": peak,
            "device": f"{name} x1"}


def pick_device(accelerator: str):
    import torch
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.accelerator={accelerator} but no CUDA device is visible")
        return torch.device("cuda", torch.cuda.current_device())
    if accelerator == "mps":
        return torch.device("mps")
    return torch.device("cpu")
