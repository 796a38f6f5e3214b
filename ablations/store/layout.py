"""Where each file of the store lives. Every path is derived here, nowhere else."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG", "RESULT", "METRICS", "MODEL", "MANIFEST", "ERROR_LOG", "STDERR_LOG",
           "SUMMARY", "LOCK", "grid_dir", "runs_dir", "run_dir", "cache_dir",
           "results_of", "checkpoint_path", "find_grids", "all_runs", "grid_of", "grid_dir_of"]

CONFIG = "config.json"
RESULT = "result.json"
METRICS = "metrics.csv"
MODEL = "model.pt"
MANIFEST = "manifest.json"
ERROR_LOG = "error.log"                  # the traceback of a run that raised
STDERR_LOG = "stderr.log"                # everything a runner's child printed
SUMMARY = ".summary.json"                # the training process hands its outcome back
LOCK = ".lock"
_RUNS, _CACHE, _CHECKPOINT = "runs", ".cache", Path("checkpoints") / "last.ckpt"


def grid_dir(results: Path, grid: str) -> Path:
    return Path(results) / grid


def runs_dir(grid_path: Path) -> Path:
    return Path(grid_path) / _RUNS


def run_dir(results: Path, grid: str, run_id: str) -> Path:
    return runs_dir(grid_dir(results, grid)) / run_id


def cache_dir(results: Path) -> Path:
    """Shared by every grid of a results folder (tokenised corpora)."""
    return Path(results) / _CACHE


def results_of(run_path: Path) -> Path:
    """The results folder a run directory belongs to."""
    return Path(run_path).parents[2]


def checkpoint_path(run_path: Path) -> Path:
    return Path(run_path) / _CHECKPOINT


def find_grids(results: Path) -> list[Path]:
    """Grid folders under a results folder: those with a manifest."""
    results = Path(results)
    return sorted(p for p in results.iterdir() if (p / MANIFEST).is_file()) \
        if results.is_dir() else []


def all_runs(results: Path) -> list[Path]:
    """Every run directory under a results folder: grids' and `ablate train`'s."""
    return sorted(Path(results).glob(f"*/{_RUNS}/*"))


def grid_dir_of(run_path: Path) -> Path:
    """The grid folder (with its manifest) a run directory belongs to."""
    return Path(run_path).parents[1]


def grid_of(run_path: Path) -> str:
    """The name of the grid (or `ablate train --name`) folder a run belongs to."""
    return Path(run_path).parents[1].name
