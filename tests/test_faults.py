"""Fault injection: each probe of issue 23 (filesystem errors, forced kills, a damaged
store, budgets) gives one clear line, the right exit code and no traceback; nothing is
lost or duplicated; no aggregate silently uses a damaged file.

A finished tiny grid (two seeds, a post-hoc evaluation, a curve plot) is trained once
per module and copied for each destructive probe. A read-only folder is a read-only
bind mount in a private mount namespace when running as root (root ignores file
modes), else the folder's write bits removed.
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ablations import store
from ablations.cli import main as cli
from ablations.grid.children import launch, outcome
from ablations.grid.children import Workers
from ablations.grid.pool import Slots, run_pool
from ablations.grid.runner import summarize

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")

GRID = """
name: tiny
claim: An encoder needs to see the future.
task: {name: disambiguate, length: 8, n_fillers: 4, n_words: 2, n_cues: 4}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: STEPS, batch_size: 16, warmup: 5, eval_every: 20, eval_batches: 2,
          log_every: 5, diag_every: 20, ckpt_every: 10, threads: 1}
seeds: [0, 1]
evaluate:
  causal: {model.causal: true}
plots:
  - {kind: curve, metric: val_loss}
"""
# result.json fields that are wall-clock measurements: they differ between any two runs
TIMING = {"wall_s", "train_s", "tokens_per_s", "finished_at", "peak_mem_mb"}


def write_grid(folder: Path, steps: int = 40) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(GRID).replace("STEPS", str(steps)))
    return path


def ablate(*argv, wrap=(), timeout=300, **kw) -> subprocess.CompletedProcess:
    cmd = [*wrap, sys.executable, "-m", "ablations", *map(str, argv)]
    return subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout, **kw)


def one_clear_line(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    assert any(all(w in line for w in words) for line in err.splitlines()), err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    grid = write_grid(base)
    proc = ablate("run", grid, "--results", base / "r", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    return grid, base / "r"


@pytest.fixture
def store_copy(finished, tmp_path):
    grid, results = finished
    shutil.copytree(results, tmp_path / "r")
    runs = sorted(store.runs_dir(tmp_path / "r" / "tiny").iterdir())
    return grid, tmp_path / "r", runs


@contextlib.contextmanager
def read_only(path: Path):
    """A command prefix that sees `path` read-only (root: a read-only bind mount in a
    private mount namespace; others: the write bits removed meanwhile)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield ()
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if not shutil.which("unshare") or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("root without mount namespaces: cannot make a folder read-only")
    yield ("unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && '
           'mount -o remount,ro,bind "$0" "$0" && exec "$@"', str(path))


# ------------------------------------------------------------------ filesystem errors
@pytest.mark.slow
def test_read_only_store_is_one_line_and_report_out_writes_elsewhere(store_copy, tmp_path):
    grid, results, _ = store_copy
    manifest = results / "tiny" / store.MANIFEST
    before = manifest.stat().st_mtime_ns
    with read_only(results) as wrap:
        run = ablate("run", grid, "--results", results, wrap=wrap)
        report = ablate("report", "--results", results, "--no-explainers", wrap=wrap)
        out = ablate("report", "--results", results, "--no-explainers", "--out",
                     tmp_path / "elsewhere", wrap=wrap)
    # a finished grid has nothing to write: not even its manifest
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert manifest.stat().st_mtime_ns == before
    assert report.returncode == 1
    one_clear_line(report.stderr, "ablate report: error:", str(results))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "elsewhere" / "REPORT.md").is_file()
    assert (tmp_path / "elsewhere" / "tiny" / "README.md").is_file()
    assert (tmp_path / "elsewhere" / "tiny" / "01_curve_val_loss.png").is_file()


FAKE = """
import json, os, sys, time
rd = sys.argv[1]
time.sleep(0.3)
with open(os.path.join(rd, "result.json"), "w") as f:
    json.dump({"status": "ok", "reason": None, "metrics": {"val_acc": 0.5}}, f)
"""


@pytest.mark.slow
def test_unwritable_run_folder_fails_that_run_only(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    grid = tmp_path / "g.yaml"
    grid.write_text(textwrap.dedent(GRID).replace("STEPS", "10").replace(
        "seeds: [0, 1]", "seeds: [0, 1, 2]").split("evaluate:")[0])
    env = {"ABLATE_RUN_ONE_CMD": f"{sys.executable} {fake}"}
    dry = ablate("run", grid, "--results", tmp_path / "r", "--dry-run")
    ids = [line.split()[0] for line in dry.stdout.splitlines()[1:4]]
    victim = tmp_path / "r" / "tiny" / "runs" / ids[1]
    victim.mkdir(parents=True)
    with read_only(victim) as wrap:
        proc = subprocess.run([*wrap, sys.executable, "-m", "ablations", "run", grid,
                               "--results", tmp_path / "r", "--workers", "2"], cwd=REPO,
                              env={**ENV, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    one_clear_line(proc.stderr, "failed", ids[1], "cannot write to the run folder")
    for rid in (ids[0], ids[2]):                       # the grid went on
        assert store.status_of(tmp_path / "r" / "tiny" / "runs" / rid)[0] == "ok"


def test_rerunning_a_finished_grid_leaves_the_manifest_alone(store_copy, capsys):
    grid, results, _ = store_copy
    manifest = results / "tiny" / store.MANIFEST
    before = manifest.stat().st_mtime_ns
    assert cli(["run", str(grid), "--results", str(results)]) == 0
    assert manifest.stat().st_mtime_ns == before
    assert cli(["run", str(grid), "--results", str(results), "--seeds", "0"]) == 0
    assert manifest.stat().st_mtime_ns != before       # its content changed: rewritten


# ------------------------------------------------------------------ a damaged store
def test_truncated_metrics_is_named_and_left_out(store_copy, capsys):
    grid, results, runs = store_copy
    path = runs[0] / store.METRICS
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])            # cut mid-row
    assert cli(["report", "--results", str(results), "--no-explainers", "-q"]) == 1
    err = capsys.readouterr().err
    one_clear_line(err, str(path), "truncated", f"delete {runs[0]}")
    from ablations.report.table import load, load_curves
    curves = load_curves(load(results / "tiny"), "val_loss")
    assert set(curves["run_id"]) == {runs[1].name}     # the intact seed only, whole
    assert cli(["run", str(grid), "--results", str(results)]) == 1
    err = capsys.readouterr().err
    one_clear_line(err, "damaged", runs[0].name, "truncated")
    assert "--retrain-damaged" in err


@pytest.mark.slow
def test_retrain_damaged_gives_back_the_same_files(store_copy, capsys):
    grid, results, runs = store_copy
    whole = {f: (runs[0] / f).read_bytes() for f in (store.METRICS, store.MODEL)}
    (runs[0] / store.MODEL).write_bytes(whole[store.MODEL][:100])
    assert cli(["run", str(grid), "--results", str(results), "--retrain-damaged"]) == 0
    assert {f: (runs[0] / f).read_bytes() for f in whole} == whole


def test_truncated_model_is_named_by_report_runner_and_evaluations(store_copy, capsys,
                                                                    monkeypatch):
    grid, results, runs = store_copy
    model = runs[1] / store.MODEL
    model.write_bytes(model.read_bytes()[:-1000])
    shutil.rmtree(runs[1] / "evals")                   # its evaluation is to be computed
    assert cli(["report", "--results", str(results), "--no-explainers", "-q"]) == 1
    one_clear_line(capsys.readouterr().err, str(model), "truncated", "delete")
    assert cli(["run", str(grid), "--results", str(results)]) == 1
    err = capsys.readouterr().err
    one_clear_line(err, "evaluations of", runs[1].name, "not computed", "delete")
    assert "tries them again" not in err
    with pytest.raises(store.Unreadable, match="truncated"):
        store.read_model(runs[1])
    # the explainer figures that would use it: stderr and exit 1, not a note on stdout
    from ablations.report import explainers, model_figures
    cfg = store.read_config(runs[1])
    monkeypatch.setattr(model_figures, "find_lm_run", lambda results: (runs[1], cfg))
    problems: list[str] = []
    explainers.make_all(results, problems, dest=results)
    assert len(problems) == 1 and str(model) in problems[0]


def test_damaged_result_json_reads_as_damaged(store_copy, capsys):
    grid, results, runs = store_copy
    (runs[0] / store.RESULT).write_text('{"status": "ok", "metr')
    assert store.status_of(runs[0])[0] == "damaged"
    assert cli(["run", str(grid), "--results", str(results)]) == 1
    one_clear_line(capsys.readouterr().err, "damaged", runs[0].name, "delete")
    assert cli(["report", "--results", str(results), "--no-explainers", "-q"]) == 1
    one_clear_line(capsys.readouterr().err, str(runs[0] / store.RESULT))


def test_result_json_without_integrity_fields_is_valid_and_unchecked(store_copy, capsys):
    _, results, runs = store_copy
    res = store.read_result(runs[0])
    assert set(res["integrity"]) == {"metrics_rows", "metrics_last_step", "model_bytes",
                                     "model_sha256"}
    del res["integrity"]
    store.atomic_write_json(runs[0] / store.RESULT, res)
    path = runs[0] / store.METRICS
    path.write_bytes(path.read_bytes()[:-30])
    assert store.status_of(runs[0], verify=True)[0] == "ok"


# ------------------------------------------------------------------ kills
def wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_sigkill_of_a_run_is_an_interruption_and_a_plain_rerun_resumes_it(tmp_path):
    grid = write_grid(tmp_path, steps=400)
    runner = subprocess.Popen([sys.executable, "-m", "ablations", "run", str(grid),
                               "--results", str(tmp_path / "r"), "--workers", "1",
                               "--seeds", "0"], cwd=REPO, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpts = lambda: list((tmp_path / "r").glob("tiny/runs/*/checkpoints/last.ckpt"))
    wait_for(lambda: ckpts() or runner.poll() is not None)
    (worker,) = children_of(runner.pid)
    (run,) = children_of(worker)
    os.kill(run, signal.SIGKILL)                       # as the OOM killer would
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 1
    one_clear_line(err, "interrupted", "killed by SIGKILL", "resumes it from its checkpoint")
    rd = ckpts()[0].parents[1]
    assert not store.is_done(rd)
    again = ablate("run", grid, "--results", tmp_path / "r", "--seeds", "0")
    assert again.returncode == 0, again.stderr
    assert store.status_of(rd)[0] == "ok" and store.read_result(rd)["steps"] == 400


@pytest.mark.slow
def test_a_dead_slot_worker_is_named_and_its_run_stays_resumable(store_copy):
    grid, results, runs = store_copy
    rd = runs[0]
    store.clear_run(rd)
    cfg = store.read_config(rd)
    cfg["train"]["steps"] = 2000
    store.atomic_write_json(rd / store.CONFIG, cfg)
    workers = Workers(Slots([{"OMP_NUM_THREADS": "1"}], "test"), [])
    try:
        worker = workers.get(0, type("R", (), {"config": cfg})())
        child = launch(rd, {}, [], worker)
        wait_for(lambda: store.checkpoint_path(rd).exists())
        worker.proc.kill()
        rc = child.proc.wait()
        status, reason = outcome(child, rc)
    finally:
        workers.close()
    assert status == "interrupted" and "slot worker died (worker killed by SIGKILL)" in reason
    assert not store.is_done(rd) and store.checkpoint_path(rd).exists()
    notes = {rd.name: (status, reason)}
    run = type("R", (), {"run_id": rd.name, "label": "base", "seed": 0})()
    assert summarize("tiny", [run], results, notes) == 1


def test_a_crash_is_still_a_failure_and_a_kill_writes_nothing(tmp_path):
    from types import SimpleNamespace
    crashed, killed = (tmp_path / "g" / "runs" / name for name in ("x", "y"))
    for rd in (crashed, killed):
        rd.mkdir(parents=True)
    child = lambda rd: SimpleNamespace(run_dir=rd, proc=object(), err_offset=0)
    assert outcome(child(crashed), -signal.SIGSEGV)[0] == "failed"
    assert store.status_of(crashed)[0] == "failed"
    assert outcome(child(killed), -signal.SIGKILL)[0] == "interrupted"
    assert not store.is_done(killed)


# ------------------------------------------------------------------ exact resume
TRAIN = ["task.name=copy", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
         "train.batch_size=8", "train.eval_batches=2", "train.log_every=5",
         "train.steps=120", "train.ckpt_every=10", "train.eval_every=30"]


def train_cmd(results: Path) -> list[str]:
    return [sys.executable, "-m", "ablations", "train", "--results", str(results),
            *[a for kv in TRAIN for a in ("--set", kv)]]


@pytest.mark.slow
def test_resume_after_kill_at_random_points_is_byte_identical(tmp_path):
    assert subprocess.run(train_cmd(tmp_path / "whole"), env=ENV, cwd=REPO,
                          capture_output=True).returncode == 0
    (whole,) = (tmp_path / "whole" / "train" / "runs").iterdir()
    rng = random.Random()
    seed = rng.randrange(10 ** 6)
    rng.seed(seed)
    for attempt in range(2):
        results = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen(train_cmd(results), env=ENV, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rd = results / "train" / "runs" / whole.name
        target = rng.randrange(10, 110)                 # a step, anywhere in the run
        wait_for(lambda rd=rd, target=target, proc=proc:
                 (store.last_step(rd / store.METRICS) or 0) >= target or proc.poll() is not None)
        proc.kill()
        proc.wait()
        if store.is_done(rd):                           # finished first: nothing to test
            continue
        assert subprocess.run(train_cmd(results), env=ENV, cwd=REPO,
                              capture_output=True).returncode == 0
        for name in (store.METRICS, store.MODEL):
            assert (rd / name).read_bytes() == (whole / name).read_bytes(), \
                f"{name} differs after a kill at step {target} (seed {seed})"
        a, b = (store.read_result(d) for d in (rd, whole))
        assert {k: v for k, v in a.items() if k not in TIMING} == \
            {k: v for k, v in b.items() if k not in TIMING}


# ------------------------------------------------------------------ signals
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_sigterm_during_evaluation_stops_the_evaluation_child(store_copy):
    _, results, runs = store_copy
    # a long evaluation (many more val batches, same weights), so that a loaded machine's
    # slow polling still sees it running; a SIGTERM that arrives after it is done is
    # tried again (an early finish exits 0 and proves nothing either way)
    grid = write_grid(results.parent)
    grid.write_text(grid.read_text().replace(
        "{model.causal: true}", "{model.causal: true, train.eval_batches: 3000}"))
    tries = []
    for _ in range(3):
        for rd in runs:
            shutil.rmtree(rd / "evals", ignore_errors=True)
        runner = subprocess.Popen([sys.executable, "-m", "ablations", "run", str(grid),
                                   "--results", str(results), "--workers", "2"], cwd=REPO,
                                  env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        wait_for(lambda r=runner: evaluators_of(r.pid) or r.poll() is not None)
        evaluators = evaluators_of(runner.pid)
        if not evaluators:                         # finished before we saw them
            _, err = runner.communicate(timeout=60)
            tries.append(f"no evaluator seen, exit {runner.returncode}: {err[-300:]}")
            continue
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=60)
        if all(list((rd / "evals").glob("*.json")) for rd in runs):   # done before it
            tries.append(f"evaluations done, exit {runner.returncode}: {err[-1500:]}")
            continue
        assert runner.returncode == 143, err
        assert err.strip().splitlines()[-1] == "ablate run: interrupted: rerun to resume"
        for pid in evaluators:                         # reaped, not orphaned
            assert not Path(f"/proc/{pid}").exists() or \
                "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        return
    pytest.fail("the evaluations finished before a SIGTERM could reach them, three "
                "times:\n" + "\n".join(tries))


@pytest.fixture
def sigterm_state(monkeypatch):
    """The process's SIGTERM handler and the remembered signal, restored afterwards."""
    from ablations import procs
    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(procs, "_signalled", False)
    yield procs
    signal.signal(signal.SIGTERM, handler)


def dropped_sigterm(procs) -> None:
    """A SIGTERM whose exception Python dropped, as it does one raised in a finalizer."""
    with contextlib.suppress(procs.Terminated):
        procs.on_sigterm(signal.SIGTERM, None)


def test_a_dropped_sigterm_still_stops_a_wait_on_children(sigterm_state):
    procs = sigterm_state
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dropped_sigterm(procs)
        start = time.monotonic()
        with pytest.raises(procs.Terminated):
            procs.wait_all([child])
        assert time.monotonic() - start < 30 and child.poll() is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("command", ["run", "replicate"])
def test_a_dropped_sigterm_still_exits_143_and_says_interrupted(sigterm_state, command,
                                                                 monkeypatch, capsys):
    """The command finished (the exception was lost), but a SIGTERM arrived: the exit
    status must not say success."""
    import importlib
    module = importlib.import_module({"run": "ablations.grid.runner",
                                      "replicate": "ablations.grid.replicate"}[command])
    monkeypatch.setattr(module, "main", lambda args: dropped_sigterm(sigterm_state) or 0)
    assert cli([command, "grid.yaml"]) == 143
    assert capsys.readouterr().err.strip() == f"ablate {command}: interrupted: rerun to resume"


def evaluators_of(pid: int) -> list[int]:
    """The runner's `ablate _evaluate` children."""
    out = []
    for child in children_of(pid):
        try:
            if b"_evaluate" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            pass
    return out


# ------------------------------------------------------------------ budgets
def test_a_model_too_big_for_memory_is_bad_input(tmp_path):
    grid = write_grid(tmp_path)
    proc = ablate("run", grid, "--results", tmp_path / "r", "--set", "model.d_model=100000")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    one_clear_line(proc.stderr, "memory", "GiB", "--ignore-memory")
    assert not (tmp_path / "r").exists()


def test_a_run_longer_than_a_day_is_said_before_it_starts(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    monkeypatch.setenv("ABLATE_RUN_ONE_CMD", f"{sys.executable} {fake}")
    grid = write_grid(tmp_path)
    assert cli(["run", str(grid), "--results", str(tmp_path / "r"), "--set",
                f"train.steps={10 ** 12}", "--seeds", "0"]) == 0
    err = capsys.readouterr().err
    one_clear_line(err, "warning:", "more than a day", "train.steps=1,000,000,000,000")
    assert err.index("more than a day") < err.index("to run")


def test_pool_survives_an_unwritable_stderr_log(tmp_path):
    """The same fault without a mount: the run's log cannot be opened."""
    from types import SimpleNamespace
    rd = tmp_path / "g" / "runs" / "a"
    (rd / store.STDERR_LOG).mkdir(parents=True)        # open(..., "ab") fails on it
    run = SimpleNamespace(run_id="a", label="base", seed=0, config={"train": {"steps": 1}})
    notes = run_pool([(run, rd)], "g", Slots([{}], "test"), [], persistent=False)
    assert notes["a"][0] == "failed" and "Is a directory" in notes["a"][1]
    assert store.status_of(rd)[0] == "failed"           # recorded: the folder is writable


def test_a_results_folder_without_its_weights_is_not_damaged(tmp_path):
    """Results are committed and shared without model.pt (gitignored): a missing file is
    'no weights kept', never damage; a present one that differs is damage."""
    from ablations.store import integrity
    (tmp_path / "model.pt").write_bytes(b"weights")
    rec = {integrity.KEY: integrity.record(tmp_path)}
    assert integrity.model_problem(tmp_path, rec) is None
    (tmp_path / "model.pt").write_bytes(b"weight")
    assert "truncated" in integrity.model_problem(tmp_path, rec)
    (tmp_path / "model.pt").unlink()
    assert integrity.model_problem(tmp_path, rec) is None
