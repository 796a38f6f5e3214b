"""Persistent slot workers (ablations/grid/worker.py): a run forked from the worker gets
the very numbers a fresh process gets; a run that crashes or is killed takes down only
itself; a dead worker is replaced; the worker does not grow from run to run."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ablations import store
from ablations.cli import main as cli
from ablations.grid.children import Workers, child_env, launch, outcome
from ablations.grid.pool import Slots
from ablations.grid.worker import Worker

GRID = """
name: tiny
claim: x
task: {name: copy, length: 6, n_tokens: 8}
base:
  model: {arch: decoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 30, batch_size: 8, warmup: 2, eval_every: 10, eval_batches: 2,
          log_every: 5, diag_every: 10, ckpt_every: 10, threads: 1}
axes:
  model.pos: [rope, none]
seeds: [0, 1]
"""


def run_grid(tmp_path, name, *extra):
    path = tmp_path / "tiny.yaml"
    path.write_text(GRID)
    assert cli(["run", str(path), "--results", str(tmp_path / name), "--workers", "1",
                *extra]) == 0
    return sorted((tmp_path / name / "tiny" / "runs").iterdir())


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The grid trained with a fresh process per run: what every forked path must equal
    (trained once for the module: four interpreters' start-up)."""
    return run_grid(tmp_path_factory.mktemp("fresh"), "fresh", "--fresh-processes")


@pytest.mark.slow
def test_forked_runs_give_the_numbers_of_fresh_processes(tmp_path, fresh):
    forked = run_grid(tmp_path, "forked")
    assert [d.name for d in forked] == [d.name for d in fresh] and len(forked) == 4
    for a, b in zip(forked, fresh):
        assert (a / store.METRICS).read_bytes() == (b / store.METRICS).read_bytes()
        assert store.read_result(a)["metrics"] == store.read_result(b)["metrics"]
        assert (a / store.MODEL).read_bytes() == (b / store.MODEL).read_bytes()


def prepared(tmp_path, steps=30) -> list[Path]:
    """Run dirs holding config.json, not yet trained (a dry expansion of the grid)."""
    from ablations.grid.expand import expand
    from ablations.grid import load
    path = tmp_path / "tiny.yaml"
    path.write_text(GRID.replace("steps: 30", f"steps: {steps}"))
    dirs = []
    for run in expand(load(path)):
        rd = tmp_path / "r" / "tiny" / "runs" / run.run_id
        store.write_config(rd, run.config)
        dirs.append(rd)
    return dirs


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_killed_run_takes_down_only_itself_and_memory_does_not_grow(tmp_path):
    dirs = prepared(tmp_path, steps=2000)
    worker = Worker(child_env({"OMP_NUM_THREADS": "1"}, []))
    try:
        base = rss_kb(worker.proc.pid)
        child = launch(dirs[0], {}, [], worker)
        while not list(dirs[0].glob("checkpoints/*.ckpt")):
            time.sleep(0.02)
        os.killpg(child.proc.pid, signal.SIGKILL)
        assert child.proc.wait() == -signal.SIGKILL
        status, reason = outcome(child, -signal.SIGKILL)     # resumable, nothing written
        assert status == "interrupted" and "killed by SIGKILL" in reason
        assert not store.is_done(dirs[0])
        for rd in dirs[1:]:                            # the same worker goes on
            (rd / "config.json").write_text((rd / "config.json").read_text().replace(
                '"steps": 2000', '"steps": 20'))
            child = launch(rd, {}, [], worker)
            assert child.proc.wait() == 0 and store.status_of(rd)[0] == "ok"
        assert worker.alive()
        assert rss_kb(worker.proc.pid) - base < 2048       # KB: the runs' memory went home
    finally:
        worker.close()


def test_a_dead_worker_is_replaced_and_multi_device_runs_start_fresh(tmp_path):
    from types import SimpleNamespace
    workers = Workers(Slots([{"OMP_NUM_THREADS": "1"}], "test"), [])
    one = SimpleNamespace(config={"train": {"devices": 1, "strategy": "auto"}})
    two = SimpleNamespace(config={"train": {"devices": 2, "strategy": "ddp"}})
    try:
        first = workers.get(0, one)
        assert first is not None and first.alive() and workers.get(0, two) is None
        first.proc.kill()
        first.proc.wait()
        second = workers.get(0, one)
        assert second is not first and second.alive()
    finally:
        workers.close()
    assert Workers(Slots([{}], "test"), [], enabled=False).get(0, one) is None


@pytest.mark.slow
def test_slurm_tasks_fork_several_runs_from_one_worker(tmp_path, fresh):
    pytest.importorskip("submitit")
    forked = run_grid(tmp_path, "array", "--executor", "slurm", "--submitit-cluster", "local",
                      "--runs-per-task", "2", "--array-parallelism", "1", "--time", "5")
    assert len(forked) == 4
    for a, b in zip(forked, fresh):
        assert store.read_result(a)["metrics"] == store.read_result(b)["metrics"]
    jobs = [d for d in (tmp_path / "array" / "tiny" / "slurm").iterdir() if d.name.isdigit()]
    assert len(jobs) == 2                      # 4 runs in 2 array tasks
