"""Which device a run uses, and what it reports about it afterwards: one rule for the
trainer and for measurement runs."""
from __future__ import annotations

import resource


def pick_device(accelerator: str):
    """The torch device `train.accelerator` means here: `auto` is a GPU when torch sees
    one (CUDA, else Apple's MPS), the CPU otherwise."""
    import torch
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.accelerator={accelerator} but no CUDA device is visible")
        return torch.device("cuda", torch.cuda.current_device())
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return torch.device("mps")
    return torch.device("cpu")


def uses_cpu(accelerator: str) -> bool:
    return accelerator == "cpu" or (accelerator == "auto" and pick_device("auto").type == "cpu")


def device_usage(device) -> tuple[float, str]:
    """(peak memory in MiB, the device's name) once a run is over."""
    import torch
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20, torch.cuda.get_device_name(device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak, f"{device.type} ({torch.get_num_threads()} threads)"
