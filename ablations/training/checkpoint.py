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


def resume_point(path: Path) -> tuple[int | None, int | None]:
    """(global step, metrics.csv rows) stored in a checkpoint; (None, None) if there is
    none usable. The row count is None in checkpoints written before it was stored."""
    if not Path(path).exists():
        return None, None
    import torch
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        rows = (ckpt.get("ablate") or {}).get("metrics_rows")
        return int(ckpt["global_step"]), None if rows is None else int(rows)
    except Exception:                    # unreadable: start over rather than crash forever
        Path(path).unlink()
        return None, None
