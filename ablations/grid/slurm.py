"""`ablate run GRID --executor slurm`: the pending runs as one SLURM job array (submitit).

Each array task runs the same idempotent entry point as the local pool, in a
subprocess (`python -m ablations _run_one RUN_DIR`), or with --runs-per-task N several
runs forked one after another from one persistent worker (worker.py): a run already done
is skipped at once, a task that was preempted or timed out is requeued by submitit
(`RunChunk` is Checkpointable) and resumes from each run's last checkpoint.

On a cluster (README, "GPUs and clusters"), from a login node, in a checkout on the
shared filesystem:
    pip install -e '.[slurm]'
    ablate run ablations/grids/positional_order.yaml --executor slurm \\
        --partition gpu --gpus-per-task 1 --cpus-per-task 8 --time 120
    # submits and returns (--wait: stay and print the summary); then `ablate report`.
Logs and submitit's pickles go to results/<grid>/slurm/. Multi-GPU runs: --set
train.devices=N train.strategy=ddp with --gpus-per-task N; Lightning then starts the
ranks inside the task itself.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from types import SimpleNamespace

from .children import REPO, Workers, launch, outcome
from .pool import Slots, one_line

try:
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:                       # the optional 'slurm' extra
    submitit = None
    Checkpointable = object


def check(cluster: str) -> None:
    """Fail before anything is written when the SLURM path cannot work here."""
    if submitit is None:
        raise ConfigError("--executor slurm", "needs submitit: pip install -e '.[slurm]'")
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if cluster == "slurm" and missing:
        raise ConfigError("--executor slurm", f"{' and '.join(missing)} not found on this "
                          "machine; --submitit-cluster local runs the same array here")


class RunChunk(Checkpointable):
    """One array task: run (or resume) its runs, one after another; returns their
    statuses. With several runs a task (--runs-per-task) they are forked from one
    persistent worker (worker.py): torch and Lightning are imported once per task."""

    def __init__(self, env: dict, plugins: list[str], persistent: bool = True):
        self.env = env
        self.plugins = plugins
        self.persistent = persistent

    def __call__(self, run_dirs: list[str]) -> list[str]:
        overlay = dict(self.env)
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        if cpus:
            overlay.setdefault("OMP_NUM_THREADS", cpus)
            overlay.setdefault("MKL_NUM_THREADS", cpus)
        if "SLURM_JOB_ID" in os.environ:
            # Lightning must treat this task as one machine: it starts its own DDP
            # processes, and submitit (not Lightning) requeues on timeout/preemption.
            overlay["SLURM_JOB_NAME"] = "interactive"
        todo = [Path(d) for d in run_dirs]
        workers = Workers(Slots([overlay], "task"), self.plugins,
                          self.persistent and len(todo) > 1)
        statuses = []
        try:
            for rd in todo:
                if store.is_done(rd):
                    statuses.append(store.status_of(rd)[0])
                    continue
                run = SimpleNamespace(config=store.read_config(rd))
                child = launch(rd, overlay, self.plugins, workers.get(0, run))
                # A signal here is preemption or the time limit: leave no result, so the
                # requeued task (or the next `ablate run`) resumes the run.
                status, reason = outcome(child, child.proc.wait(), signals_interrupt=True)
                if status == "interrupted":
                    raise RuntimeError(f"{rd.name}: {reason}; it resumes when requeued or "
                                       "rerun")
                statuses.append(status)
        finally:
            workers.close()
        return statuses


def submit(pending: list, grid: str, gdir: Path, slots, plugins: list[str], args) -> bool:
    """Submit; True when the array has finished here (so the summary is meaningful)."""
    if not pending:
        return True
    cluster = args.submitit_cluster
    # the tasks import this very code, whatever directory SLURM starts them in
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                             os.environ.get("PYTHONPATH")]))
    executor = submitit.AutoExecutor(folder=gdir / "slurm" / "%j", cluster=cluster)
    executor.update_parameters(
        name=f"ablate-{grid}", timeout_min=args.time, cpus_per_task=args.cpus_per_task,
        gpus_per_node=args.gpus_per_task or None, slurm_partition=args.partition,
        slurm_array_parallelism=args.array_parallelism)
    task = RunChunk(slots.envs[0], plugins, not getattr(args, "fresh_processes", False))
    every = [str(Path(rd).resolve()) for _, rd in pending]   # tasks may start elsewhere
    per = max(1, getattr(args, "runs_per_task", 1))
    dirs = [every[i:i + per] for i in range(0, len(every), per)]
    if cluster == "slurm":
        jobs = executor.map_array(task, dirs)
        array_id = str(jobs[0].job_id).split("_")[0]
        print(f"{grid}: submitted {len(every)} runs as SLURM array {array_id} of "
              f"{len(jobs)} task(s) "
              f"(logs: {gdir / 'slurm'})", file=sys.stderr)
        if not args.wait:
            print(f"{grid}: when it is done, `ablate report --results {gdir.parent}`; "
                  f"`--dry-run` shows each run's status, and the same command again "
                  f"submits only the unfinished runs", file=sys.stderr)
            return False
        _wait(jobs)
        return True
    # submitit's local executor starts every job of an array at once: cap it ourselves.
    cap = max(1, args.array_parallelism)
    for i in range(0, len(dirs), cap):
        _wait(executor.map_array(task, dirs[i:i + cap]))
    return True


def _wait(jobs) -> None:
    for job in jobs:
        try:
            job.result()
        except Exception as e:            # the run's own outcome is on disk either way
            print(f"array task {job.job_id}: {one_line(str(e))}", file=sys.stderr)
