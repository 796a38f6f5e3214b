"""Atomic checkpoints: a run killed at any moment resumes from its last complete one."""
from __future__ import annotations

import os
from pathlib import Path



def save_checkpoint_atomically(trainer, path: Path) -> None:
    """trainer.save_checkpoint to a temp file, then os.replace: a kill mid-write leaves
    the previous checkpoint intact. Every rank calls this (it synchronises)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(str(tmp))
    if trainer.is_global_zero:
        os.replace(tmp, path)


def checkpoint_step(path: Path) -> int | None:
    """The global step stored in a checkpoint, or None if there is none usable."""
    if not Path(path).exists():
        return None
    import torch
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:                    # unreadable: start over rather than crash forever
        Path(path).unlink()
        return None
