"""The slot pool: one process per run, each slot pinned to a CPU share or to GPUs.

By default each slot keeps a persistent worker (worker.py) that has imported torch and
Lightning once and forks a child per run; a run that starts processes of its own
(several devices, DDP) or the test hook ABLATE_RUN_ONE_CMD gets a fresh interpreter
instead (`ablate _run_one RUN_DIR`), as does every run with `--fresh-processes`.

What a child's exit means (crashed, interrupted, elsewhere) is children.py's. Children
die with the runner (PR_SET_PDEATHSIG on Linux) and sit in their own session, so Ctrl-C
or SIGTERM reaches the runner only, which kills them before any result is written: an
interrupted run is resumed next time, never marked failed. A run folder the runner
cannot write to is that run's failure, never the grid's.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import time

from transformer.validation import ConfigError

from .. import store
from ..procs import check_terminated
from .children import (Workers, kill, launch, lock_held,
                       os_error, outcome)
from .progress import GridProgress


@dataclasses.dataclass
class Slots:
    envs: list[dict]                      # one env overlay per slot
    label: str

    def describe(self, executor: str) -> str:
        return self.label if executor == "slurm" else f"{len(self.envs)} slot(s): {self.label}"


GPU_LAYER = {"train": {"accelerator": "gpu"}}   # execution-only: run ids do not change


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                # not on Linux
        return os.cpu_count() or 1


def parse_gpus(devices: list[str] | None) -> list[str]:
    """--devices: 'cpu' (or nothing) -> [], 'auto' -> every visible GPU, '0 1' / '0,1' -> ids."""
    if not devices or devices == ["cpu"]:
        return []
    if devices == ["auto"]:
        import torch
        return [str(i) for i in range(torch.cuda.device_count())]
    ids = [x for item in devices for x in item.split(",") if x]
    if not ids or not all(x.isdigit() for x in ids) or len(set(ids)) < len(ids):
        raise ConfigError("--devices", f"expected cpu, auto or distinct GPU ids like 0 1 2 3 "
                          f"or 0,1,2,3; got {' '.join(devices)!r}")
    return ids


def per_run_devices(runs) -> int:
    """train.devices, which must be one integer for the whole grid to share out GPUs."""
    counts = {json.dumps(r.config["train"]["devices"]) for r in runs}
    if len(counts) != 1 or not isinstance(json.loads(next(iter(counts))), int):
        raise ConfigError("train.devices", f"must be one integer across the grid to share "
                          f"out GPUs, got {', '.join(sorted(counts))}")
    return max(1, json.loads(counts.pop()))


def make_slots(gpus: list[str], workers: int | None, runs) -> Slots:
    """CPU: `workers` slots sharing the cores. GPUs: one slot per train.devices GPUs."""
    groups: list[str] = []
    if gpus:
        size = per_run_devices(runs)
        if len(gpus) % size:
            raise ConfigError("--devices", f"{len(gpus)} GPUs do not split into slots of "
                              f"train.devices={size}")
        groups = [",".join(gpus[i:i + size]) for i in range(0, len(gpus), size)]
    workers = workers or len(groups) or 1
    threads = str(max(1, cpu_count() // workers))
    base = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if not groups:
        return Slots([dict(base) for _ in range(workers)], f"CPU, {threads} thread(s) each")
    # more workers than groups: runs share a GPU (small models leave it mostly idle)
    envs = [{**base, "CUDA_VISIBLE_DEVICES": groups[i % len(groups)]} for i in range(workers)]
    return Slots(envs, "GPUs " + " | ".join(e["CUDA_VISIBLE_DEVICES"] for e in envs))


def slurm_slots(gpus: int, cpus: int | None, runs) -> Slots:
    if gpus < 0 or (cpus is not None and cpus < 1):
        raise ConfigError("--gpus-per-task", "needs >= 0 GPUs and >= 1 CPU per task")
    if gpus and per_run_devices(runs) > gpus:
        raise ConfigError("--gpus-per-task", f"{gpus} is fewer than train.devices="
                          f"{per_run_devices(runs)}")
    env = {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus)} if cpus else {}
    return Slots([env], f"SLURM array, {gpus} GPU(s) per task")


# ------------------------------------------------------------------- the pool
def run_pool(pending: list, grid: str, slots: Slots, plugins: list[str],
             poll: float = 0.1, persistent: bool = True,
             workers: Workers | None = None) -> dict[str, tuple[str, str]]:
    """Run every (run, run_dir) with at most one child per slot; results go to disk.
    Returns run id -> (status, reason) of the runs whose outcome the disk does not show:
    interrupted, or failed in a folder that could not be written. `workers`: the slots'
    workers when the caller started them early (Workers.start_all)."""
    queue = collections.deque(pending)
    active: dict[int, tuple] = {}
    workers = workers or Workers(slots, plugins, persistent)
    notes: dict[str, tuple[str, str]] = {}
    with GridProgress(grid, len(pending)) as progress:
        try:
            while queue or active:
                for slot in range(len(slots.envs)):
                    while slot not in active and queue:
                        run, rd = queue.popleft()
                        text = f"{run.run_id} {run.label} seed={run.seed}"
                        try:
                            child = start(rd, slots.envs[slot], plugins, workers, slot, run)
                        except OSError as e:
                            notes[run.run_id] = ("failed", record_unwritable(rd, e))
                            progress.done(text, "failed", notes[run.run_id][1])
                            continue
                        if isinstance(child, tuple):     # not started: done or locked
                            progress.done(text, *child)
                            continue
                        active[slot] = (child, text, run.run_id)
                        progress.started(text, rd, run.config["train"].get("steps"))
                for slot, (child, text, rid) in list(active.items()):
                    rc = child.proc.poll()
                    if rc is None:
                        continue
                    del active[slot]
                    status, reason = outcome(child, rc)
                    if status == "interrupted" or not store.is_done(child.run_dir):
                        notes[rid] = (status, reason)
                    took = f"{time.monotonic() - child.started:.1f}s"
                    detail = took if status == "ok" else f"{took}: {_first(reason)}"
                    progress.done(text, status, detail)
                progress.tick()
                time.sleep(poll)
                check_terminated()         # a SIGTERM whose exception Python dropped
        finally:
            for child, _, _ in active.values():       # interrupted: resume them next time
                kill(child)
            workers.close()
    return notes


def start(rd, env: dict, plugins: list[str], workers: Workers, slot: int, run):
    """A started Child, or (status, detail) when the run needs no child."""
    if store.is_done(rd):                             # another runner finished it meanwhile
        return store.status_of(rd)[0], "finished elsewhere"
    if lock_held(rd):
        return "elsewhere", "running in another process"
    return launch(rd, env, plugins, workers.get(slot, run))


def record_unwritable(rd, e: OSError) -> str:
    """The run's failure when its folder cannot be written: recorded in result.json
    where that still works (a full disk may have room for it, a read-only folder not)."""
    reason = f"cannot write to the run folder: {os_error(e)}"
    try:
        store.write_result(rd, status="failed", reason=reason, config=None)
    except OSError:
        reason += " (not recorded)"
    return reason


def _first(reason: str) -> str:
    return one_line(reason, 120)


def one_line(reason: str, width: int = 160) -> str:
    """A reason for a summary line: its first line, and its last (the exception) if more."""
    lines = [ln.strip() for ln in reason.strip().splitlines() if ln.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return text if len(text) <= width else text[:width - 3] + "..."
