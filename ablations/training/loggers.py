"""Lightning loggers beside metrics.csv (`train.logger`): TensorBoard, Weights & Biases
(offline works without a network) or MLflow (a file store), each an optional extra.

metrics.csv stays the record the report reads; a logger is a view for the tools people
already use. A resumed run appends to the same logged run: TensorBoard writes into one
fixed folder per run, W&B resumes the run whose id is the run id, and MLflow resumes the
run id it saved beside the run. Hyperparameters are the resolved config, flattened.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import store

MLFLOW_RUN = ".mlflow_run_id"


def make_logger(resolved: dict, run_dir: Path):
    """The Lightning logger for this run, or False for none."""
    name = resolved["train"].get("logger", "none")
    if name == "none":
        return False
    grid = store.grid_of(run_dir)
    if name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger
        logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="",
                                   default_hp_metric=False)
    elif name == "wandb":
        from lightning.pytorch.loggers import WandbLogger
        os.environ.setdefault("WANDB_MODE", "offline")      # online only when asked for
        logger = WandbLogger(project=grid, name=run_dir.name, id=run_dir.name,
                             resume="allow", save_dir=str(run_dir))
    else:
        from lightning.pytorch.loggers import MLFlowLogger
        saved = run_dir / MLFLOW_RUN
        logger = MLFlowLogger(
            experiment_name=grid, run_name=run_dir.name,
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or
            f"file:{(store.results_of(run_dir) / 'mlruns').resolve()}",
            run_id=saved.read_text().strip() if saved.is_file() else None)
        store.atomic_write_text(saved, logger.run_id + "\n")
    logger.log_hyperparams(flatten(resolved))
    return logger


def flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) \
                else str(value)
    return out
