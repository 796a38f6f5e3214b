"""Progress inside a run (`ablate train`'s callback) and of the runs in flight (the grid's
line, from the tail of each run's metrics.csv); neither changes what a run writes."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ablations.grid.progress import GridProgress
from ablations.store import MetricsWriter, last_step
from ablations.training.progress import RunProgress, progress_line

ROOT = Path(__file__).resolve().parents[1]


def test_progress_line_has_step_loss_speed_and_eta():
    assert progress_line(250, 1000, 2.34567, 50.0, 250) == \
        "step 250/1000 (25%)  loss 2.3457  5 steps/s  ETA 2m30s"
    # a resumed run: speed from the steps this process took, not from step 0
    assert progress_line(600, 1000, None, 10.0, 100).endswith("10 steps/s  ETA 40s")
    assert progress_line(0, 1000, None, 0.0, 0) == "step 0/1000 (0%)"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def drive(callback, clock, steps, dt):
    trainer = SimpleNamespace(global_step=0, max_steps=steps, is_global_zero=True)
    callback.on_train_start(trainer, None)
    for step in range(1, steps + 1):
        clock.now += dt
        trainer.global_step = step
        callback.on_train_batch_end(trainer, None, {"loss": 1.5}, None, step)
    callback.on_train_end(trainer, None)


def test_off_a_terminal_one_line_every_interval():
    out, clock = io.StringIO(), Clock()
    drive(RunProgress(out, live=False, every_s=30, clock=clock), clock, steps=100, dt=1.0)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["30/100", "60/100", "90/100"]
    assert all("loss 1.5000" in line and "ETA" in line for line in lines)


def test_on_a_terminal_one_line_redrawn_and_ended():
    out, clock = io.StringIO(), Clock()
    drive(RunProgress(out, live=True, clock=clock), clock, steps=10, dt=0.25)
    text = out.getvalue()
    assert text.count("\r") == 6 and "\n" not in text.rstrip("\n") and text.endswith("\n")
    assert "step 10/10 (100%)" in text.rsplit("\r", 1)[1]


def test_last_step_reads_complete_rows_only(tmp_path):
    path = tmp_path / "metrics.csv"
    assert last_step(path) is None
    writer = MetricsWriter(path)
    assert last_step(path) is None                    # the header only
    writer.write(0, {"val_loss": 3.0})
    writer.write(25, {"train_loss": 2.0, "lr": 1e-3})
    writer.close()
    assert last_step(path) == 25
    with open(path, "a") as f:
        f.write("50,train_lo")                        # a row being written
    assert last_step(path) == 25
    path.write_text("step,metric,value\n" + "".join(f"{i},m,1.0\n" for i in range(5000)))
    assert last_step(path, tail_bytes=64) == 4999


def test_grid_line_names_the_step_of_each_run_in_flight(tmp_path):
    for name, step in (("a", 250), ("b", None)):
        writer = MetricsWriter(tmp_path / name / "metrics.csv")
        if step is not None:
            writer.write(step, {"train_loss": 1.0})
        writer.close()
    out = io.StringIO()
    progress = GridProgress("demo", 4, live=False, stream=out, every_s=0)
    progress.started("run-a", tmp_path / "a", 1000)
    progress.started("run-b", tmp_path / "b", 1000)
    progress.tick()
    assert out.getvalue().splitlines()[-1] == \
        "[0/4] in flight: run-a step 250/1000, run-b step -/1000"
    assert progress.fraction_running() == pytest.approx(0.25)
    progress.done("run-a", "ok")
    assert "run-a" not in progress.in_flight()


@pytest.mark.slow
def test_progress_lines_leave_metrics_csv_byte_identical(tmp_path):
    tiny = ["task.name=copy", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
            "train.batch_size=8", "train.eval_batches=2", "train.log_every=5",
            "train.steps=30", "train.eval_every=10"]
    files, errs = [], []
    for name, every in (("quiet", "1e9"), ("chatty", "0")):
        proc = subprocess.run(
            [sys.executable, "-m", "ablations", "train", "--results", str(tmp_path),
             "--name", name, "--set", *tiny], capture_output=True, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                     ABLATE_PROGRESS_S=every))
        assert proc.returncode == 0, proc.stderr
        files.append(next((tmp_path / name).rglob("metrics.csv")).read_bytes())
        errs.append(proc.stderr)
    assert files[0] == files[1]
    assert "step 30/30" in errs[1] and "step " not in errs[0]


def test_the_live_bar_counts_the_steps_of_runs_in_flight(tmp_path):
    writer = MetricsWriter(tmp_path / "a" / "metrics.csv")
    writer.write(500, {"train_loss": 1.0})
    writer.close()
    out = io.StringIO()
    with GridProgress("demo", 2, live=True, stream=out, every_s=0) as progress:
        progress.started("run-a", tmp_path / "a", 1000)
        progress.tick()
        assert progress._bar.tasks[0].completed == pytest.approx(0.5)
    assert "1 running (500/1000)" in out.getvalue()
