"""Time estimates for `ablate run --dry-run`, each saying how it was made, best first:

- done: the run is finished; its result.json has the time it took (wall_s).
- finished: a finished run of the same shape (everything that sets the time: model,
  task, steps, batch, evaluation intervals; not the seed or the learning rate) is in the
  grid's folder: the mean of their wall_s.
- probe: timed on this machine (probe.py): seconds per training step and per evaluation
  of the run's own shape, with the threads its slot gets, plus a per-run start-up
  measured with one real one-step run. run = start-up + steps x step + evals x eval.
- model: a rough FLOP model where nothing can be timed here (a GPU run on a machine
  without one, a measurement task, a probe that failed): start-up + steps x max(per-step
  overhead, 6 x params x tokens per step / achieved FLOP/s) (Kaplan et al. 2020).
"""
from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

from .. import store
from ..tasks import TASKS, make_params

# (achieved FLOP/s, seconds of overhead per step): fp32 on a laptop-class CPU at ablation
# sizes, and bf16 on one data-centre GPU (H100-class at ~40% of its dense peak)
DEVICES = {"cpu": (40e9, 3e-3), "gpu": (400e12, 8e-3)}
STARTUP_S = 3.0
LOAD = getattr(os, "getloadavg", None)       # (1, 5, 15-minute load); not on Windows
# train fields that change what a run computes but not how long it takes
UNTIMED = {"seed", "lr", "schedule", "warmup", "min_lr_ratio", "weight_decay", "beta1",
           "beta2", "grad_clip", "logger"}
HOW = {"done": "measured (finished runs)", "finished": "finished runs of the same shape",
       "probe": "a timed probe on this machine", "model": "a rough FLOP model",
       "cell": "the original runs of the same cell (replicate.py)"}


def run_seconds(config: dict, params: int, device: str) -> float:
    """The rough FLOP model."""
    task = config["task"]
    cls = TASKS.get(task["name"])
    positions = cls.max_positions(make_params(cls, task), config["model"]["arch"])
    train = config["train"]
    tokens = positions * train["batch_size"]
    flops, overhead = DEVICES[device]
    return STARTUP_S + train["steps"] * max(overhead, 6 * params * tokens / flops)


def evaluations(train: dict) -> float:
    """How many evaluations a run does, in units of one `eval_batches` evaluation: at
    step 0, every eval_every steps, at the last step, and the test split once."""
    steps, every = train["steps"], train["eval_every"]
    n = 1 + steps // every + (steps % every != 0)
    return n + train.get("test_batches", 0) / train["eval_batches"]


def probed_seconds(train: dict, startup_s: float, step_s: float, eval_s: float) -> float:
    return startup_s + train["steps"] * step_s + evaluations(train) * eval_s


def timing_key(config: dict) -> str:
    """Runs with one key take the same time (up to noise)."""
    train = {k: v for k, v in config["train"].items() if k not in UNTIMED}
    return json.dumps({"model": config["model"], "task": config["task"], "train": train},
                      sort_keys=True, default=str)


def shape_key(config: dict) -> str:
    """Runs with one key have the same step and evaluation cost: one probe serves them."""
    train = {k: config["train"].get(k) for k in ("batch_size", "eval_batches", "precision")}
    return json.dumps({"model": config["model"], "task": config["task"], "train": train},
                      sort_keys=True, default=str)


def finished_times(grid_dir: Path) -> dict[str, list[float]]:
    """timing_key -> wall_s of every run in the grid's folder that finished ok."""
    out: dict[str, list[float]] = {}
    for path in sorted(Path(grid_dir).glob("runs/*/" + store.RESULT)):
        try:
            result = store.read_result(path.parent)
        except (OSError, store.Unreadable):
            continue
        if result.get("status") == "ok" and result.get("config") and result.get("wall_s"):
            out.setdefault(timing_key(result["config"]), []).append(float(result["wall_s"]))
    return out


class Estimator:
    """seconds(run, params, device, status) -> (seconds, how); `probe` and `startup` are
    the probe.py functions (replaceable in tests), called once per shape and once."""

    def __init__(self, grid_dir: Path, cache_dir, threads: int, probe=None, startup=None,
                 use_probe: bool = True, load=LOAD):
        self.finished = finished_times(grid_dir)
        self.load, self.load_at_probe = load, None
        self.grid_dir, self.cache_dir, self.threads = Path(grid_dir), cache_dir, threads
        if use_probe and probe is None:
            from . import probe as probe_module
            probe, startup = probe_module.step_and_eval_seconds, probe_module.startup_seconds
        self.probe, self.startup = (probe, startup) if use_probe else (None, None)
        self.shapes: dict[str, tuple[float, float] | None] = {}
        self.startup_s: float | None = None
        self.used: Counter = Counter()

    def seconds(self, run, params: int, device: str, status: str) -> tuple[float, str]:
        secs, how = self._seconds(run, params, device, status)
        self.used[how] += 1
        return secs, how

    def _seconds(self, run, params, device, status):
        if status != "pending":
            try:
                return float(store.read_result(self.grid_dir / "runs" / run.run_id)
                             ["wall_s"]), "done"
            except (OSError, store.Unreadable, KeyError, TypeError, ValueError):
                pass
        same = self.finished.get(timing_key(run.config))
        if same:
            return sum(same) / len(same), "finished"
        timed = self._probe(run.config) if device == "cpu" else None
        if timed is None:
            return run_seconds(run.config, params, device), "model"
        return probed_seconds(run.config["train"], self.startup_s, *timed), "probe"

    def _probe(self, config: dict):
        if self.probe is None or TASKS.get(config["task"]["name"]).measures:
            return None
        key = shape_key(config)
        if key not in self.shapes:
            if self.load_at_probe is None and self.load is not None:
                self.load_at_probe = self.load()[0]      # before the probe adds its own
            try:
                self.shapes[key] = self.probe(config, self.cache_dir, self.threads)
                if self.startup_s is None:
                    self.startup_s = self.startup(config, *self.shapes[key])
            except Exception as e:         # an estimate must never stop a dry run,
                self.shapes[key] = None    # but a broken probe must not hide either
                print(f"--dry-run: the timed probe failed ({type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}); using the FLOP model",
                      file=sys.stderr)
        return self.shapes[key] if self.startup_s is not None else None

    def describe(self) -> str:
        """How the estimates were made, e.g. 'a timed probe on this machine (...) for 6'."""
        parts = []
        for how, n in self.used.most_common():
            text = HOW[how]
            if how == "probe":
                text += (f": {len([s for s in self.shapes.values() if s])} shape(s), "
                         f"{self.startup_s:.1f}s start-up per run, {self.threads} thread(s)")
            parts.append(f"{text} for {n} run(s)")
        return "; ".join(parts) + self._busy()

    def _busy(self) -> str:
        """A probe that shares the cores with other work oversubscribes them, and its
        threads then wait on each other: seen here at 6x a quiet machine's step time."""
        cores, load = os.cpu_count() or 1, self.load_at_probe
        if not self.used["probe"] or load is None or load + self.threads <= cores:
            return ""
        return (f"; the machine was busy while the probe ran (load {load:.1f} on {cores} "
                f"core(s)), so its times may be several times too long: rerun the dry run "
                f"on a quiet machine")


def device_of(config: dict, scale: str | None) -> str:
    acc = config["train"].get("accelerator", "cpu")
    return "gpu" if acc in ("gpu", "cuda") or (acc == "auto" and scale == "gpu") else "cpu"


def fmt_seconds(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.1f}h"
