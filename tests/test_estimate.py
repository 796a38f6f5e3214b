"""`--dry-run`'s time estimate: measured times first, then finished runs of the same
shape, then a timed probe (start-up + steps x step + evaluations x evaluation), then the
rough model; each estimate says how it was made. Probes are replaced by fixed numbers:
these tests check the logic, never the clock."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ablations import store
from ablations.config import nest, parse_sets, resolve, run_id
from ablations.grid.estimate import Estimator, evaluations, probed_seconds, timing_key

TINY = ["task.name=copy", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
        "train.steps=120", "train.eval_every=50", "train.eval_batches=4"]


def run(*extra):
    config = resolve([nest(parse_sets([*TINY, *extra]))])
    return SimpleNamespace(config=config, run_id=run_id(config))


def finish(grid_dir, r, wall_s, status="ok"):
    store.write_result(grid_dir / "runs" / r.run_id, status=status, reason=None,
                       config=r.config, metrics={}, wall_s=wall_s)


class FakeProbe:
    def __init__(self, step_s=0.01, eval_s=0.5, startup_s=2.0):
        self.calls, self.startups = [], 0
        self.step_s, self.eval_s, self.startup_s = step_s, eval_s, startup_s

    def probe(self, config, cache_dir, threads):
        self.calls.append((config["model"]["d_model"], threads))
        return self.step_s, self.eval_s

    def startup(self, config, step_s, eval_s):
        self.startups += 1
        return self.startup_s


def estimator(tmp_path, fake, **kw):
    kw.setdefault("load", lambda: (0.0, 0.0, 0.0))         # a quiet machine, unless told
    return Estimator(tmp_path, None, threads=2, probe=fake.probe, startup=fake.startup, **kw)


def test_evaluations_count_step_0_each_interval_the_last_step_and_the_test_split():
    assert evaluations({"steps": 120, "eval_every": 50, "eval_batches": 4}) == 4   # 0,50,100,120
    assert evaluations({"steps": 100, "eval_every": 50, "eval_batches": 4}) == 3
    assert evaluations({"steps": 100, "eval_every": 50, "eval_batches": 4,
                        "test_batches": 8}) == 5


def test_probe_combines_startup_steps_and_evaluations(tmp_path):
    fake = FakeProbe()
    secs, how = estimator(tmp_path, fake).seconds(run(), 1000, "cpu", "pending")
    assert how == "probe" and secs == pytest.approx(2.0 + 120 * 0.01 + 4 * 0.5)
    assert secs == probed_seconds(run().config["train"], 2.0, 0.01, 0.5)


def test_one_probe_per_shape_and_one_startup_per_grid(tmp_path):
    fake = FakeProbe()
    est = estimator(tmp_path, fake)
    for r in (run(), run("train.seed=1"), run("train.lr=0.01"), run("model.d_model=32")):
        est.seconds(r, 1000, "cpu", "pending")
    assert fake.calls == [(16, 2), (32, 2)] and fake.startups == 1
    assert "a timed probe on this machine: 2 shape(s), 2.0s start-up per run, 2 thread(s) " \
        "for 4 run(s)" == est.describe()


def test_a_probe_on_a_busy_machine_says_its_times_may_be_too_long(tmp_path):
    import os
    cores = os.cpu_count() or 1
    busy = estimator(tmp_path, FakeProbe(), load=lambda: (cores + 0.5, 0.0, 0.0))
    busy.seconds(run(), 1000, "cpu", "pending")
    assert busy.describe().endswith(f"(load {cores + 0.5:.1f} on {cores} core(s)), so its "
                                    "times may be several times too long: rerun the dry run "
                                    "on a quiet machine")
    quiet = estimator(tmp_path, FakeProbe(), load=lambda: (0.0, 0.0, 0.0))
    quiet.seconds(run(), 1000, "cpu", "pending")
    assert "busy" not in quiet.describe()
    unprobed = estimator(tmp_path, FakeProbe(), load=lambda: (cores + 9.0, 0.0, 0.0))
    unprobed.seconds(run(), 1000, "gpu", "pending")          # the FLOP model: no probe
    assert "busy" not in unprobed.describe()


def test_finished_runs_of_the_same_shape_beat_the_probe(tmp_path):
    finish(tmp_path, run("train.seed=1"), 30.0)
    finish(tmp_path, run("train.seed=2", "train.lr=0.01"), 40.0)   # lr: the same time
    finish(tmp_path, run("train.seed=3"), 99.0, status="diverged")  # not a full run's time
    finish(tmp_path, run("train.seed=4", "train.steps=240"), 99.0)  # another shape
    fake = FakeProbe()
    est = estimator(tmp_path, fake)
    assert est.seconds(run(), 1000, "cpu", "pending") == (35.0, "finished")
    assert est.seconds(run("train.seed=1"), 1000, "cpu", "ok") == (30.0, "done")
    assert fake.calls == [] and "finished runs of the same shape for 1 run(s)" in est.describe()
    assert timing_key(run().config) == timing_key(run("train.seed=9", "train.lr=1").config)


def test_gpu_runs_and_failed_probes_fall_back_to_the_model(tmp_path):
    fake = FakeProbe()
    est = estimator(tmp_path, fake)
    assert est.seconds(run(), 1000, "gpu", "pending")[1] == "model"

    def broken(config, cache_dir, threads):
        raise RuntimeError("no such corpus")
    est = Estimator(tmp_path, None, 2, probe=broken, startup=fake.startup)
    assert est.seconds(run(), 1000, "cpu", "pending")[1] == "model"
    assert est.describe() == "a rough FLOP model for 1 run(s)"
    assert Estimator(tmp_path, None, 2, use_probe=False).seconds(
        run(), 1000, "cpu", "pending")[1] == "model"


@pytest.mark.slow
def test_the_real_probe_times_a_run_without_writing_anywhere(tmp_path, monkeypatch):
    from ablations.grid import probe
    monkeypatch.chdir(tmp_path)
    config = run().config
    step_s, eval_s = probe.step_and_eval_seconds(config, None, threads=1)
    assert step_s > 0 and eval_s > 0
    assert probe.startup_seconds(config, step_s, eval_s) >= 0
    assert list(tmp_path.iterdir()) == []


def test_the_real_probe_times_a_tiny_run():
    """Not mocked: a broken import in the probe would otherwise only show as a silent
    fall-back to the FLOP model."""
    from ablations.config import resolve
    from ablations.grid.probe import step_and_eval_seconds
    cfg = resolve([{"task": {"name": "copy", "length": 4, "n_tokens": 4},
                    "model": {"d_model": 16, "n_layers": 1}, "train": {"steps": 3}}])
    step_s, eval_s = step_and_eval_seconds(cfg, None, 1)
    assert step_s > 0 and eval_s > 0
