"""`ablate run`: skip-finished, kill-and-resume, divergence/crash isolation, the slot pool,
two runners on one folder, --dry-run, and the submitit path.

Tests of the real `_run_one` use tiny order-task runs (a few seconds each, mostly the
interpreter start); the others swap in a fake child through ABLATE_RUN_ONE_CMD.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ablations import store
from ablations.cli import main as cli
from ablations.grid.children import lock_held
from ablations.grid.pool import cpu_count

REPO = Path(__file__).resolve().parents[1]

REAL = """
name: tiny
claim: A positional encoding helps; a huge learning rate diverges.
task: {name: order, length: 8}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1, max_len: 16}
  train: {steps: 300, batch_size: 16, warmup: 5, eval_every: 150, eval_batches: 2,
          log_every: 10, diag_every: 150, ckpt_every: 10}
axes:
  train.lr: [3.0e-3, 1.0e+9]
seeds: [0]
"""

FAKE = """
import fcntl, json, os, signal, sys, time
rd = sys.argv[1]
lock = open(os.path.join(rd, ".lock"), "w")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)
if os.path.exists(os.path.join(rd, "result.json")):
    sys.exit(0)
cfg = json.load(open(os.path.join(rd, "config.json")))
t0 = time.time()
time.sleep(float(os.environ.get("FAKE_SLEEP", "0.2")))
env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                                      "ABLATE_PLUGINS", "PYTHONPATH")}
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"run": os.path.basename(rd), "start": t0, "end": time.time(),
                        "cfg": cfg, **env}) + "\\n")
lr = cfg["train"]["lr"]
if lr == 2e9:
    print("boom: the kernel did something bad", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
if lr == 3e9:
    sys.exit(7)
status = "diverged" if lr == 1e9 else "ok"
tmp = os.path.join(rd, ".result.tmp")
with open(tmp, "w") as f:
    json.dump({"status": status, "reason": "loss is nan" if status != "ok" else None,
               "metrics": {"val_acc": 0.5}}, f)
os.replace(tmp, os.path.join(rd, "result.json"))
sys.exit(0 if status == "ok" else 1)
"""

FAKE_GRID = """
name: fake
claim: The pool keeps going.
task: {name: order, length: 8}
base: {model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}}
axes:
  train.lr: LRS
seeds: [0]
"""


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli([str(a) for a in argv])
    return code, capsys.readouterr().err


def attempts(run_dir: Path) -> int:
    return (run_dir / "stderr.log").read_text().count("=== ")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake `_run_one` that logs each run; returns a function reading that log."""
    script = tmp_path / "fake_run_one.py"
    script.write_text(FAKE)
    log = tmp_path / "fake.log"
    monkeypatch.setenv("ABLATE_RUN_ONE_CMD", f"{sys.executable} {script}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return lambda: [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def fake_grid(tmp_path, lrs) -> Path:
    path = tmp_path / "fake.yaml"
    path.write_text(textwrap.dedent(FAKE_GRID).replace("LRS", json.dumps(lrs)))
    return path


def most_at_once(log) -> int:
    return max(sum(o["start"] < e["end"] and e["start"] < o["end"] for o in log) for e in log)


# ------------------------------------------------------------- real _run_one
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The tiny grid, run once uninterrupted (the reference for kill-and-resume)."""
    base = tmp_path_factory.mktemp("real")
    grid = base / "tiny.yaml"
    grid.write_text(textwrap.dedent(REAL))
    proc = subprocess.run([sys.executable, "-m", "ablations", "run", str(grid), "--results",
                           str(base / "a"), "--workers", "2"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    return grid, base, proc


def results_of(results: Path) -> dict:
    return {p.parent.name: store.read_json(p)
            for p in sorted((results / "tiny" / "runs").glob("*/result.json"))}


@pytest.mark.slow
def test_real_divergence_is_recorded_and_the_grid_goes_on(real):
    grid, base, proc = real
    assert proc.returncode == 0, proc.stderr          # a divergence is a result, not a failure
    res = results_of(base / "a")
    assert sorted(r["status"] for r in res.values()) == ["diverged", "ok"]
    assert "diverged" in proc.stderr and "lr=1e+09" in proc.stderr      # the summary
    manifest = store.read_json(base / "a" / "tiny" / store.MANIFEST)
    assert [e["label"] for e in manifest["runs"]] == ["lr=0.003", "lr=1e+09"]
    assert {e["run_id"] for e in manifest["runs"]} == set(res)
    assert list(manifest["spec"]) == ["name", "claim", "task", "base", "axes", "seeds"]
    assert manifest["applied"] == {"scale": None, "set": {}, "seeds": None, "plugins": []}


@pytest.mark.slow
def test_real_rerun_of_a_finished_grid_trains_nothing(real, capsys):
    grid, base, _ = real
    before = {rid: (base / "a" / "tiny" / "runs" / rid / store.RESULT).stat().st_mtime_ns
              for rid in results_of(base / "a")}
    code, err = run_cli(capsys, "run", grid, "--results", base / "a")
    assert code == 0 and "0 to run" in err and "1 diverged" in err   # diverged: a result
    for rid, mtime in before.items():
        rd = base / "a" / "tiny" / "runs" / rid
        assert (rd / store.RESULT).stat().st_mtime_ns == mtime and attempts(rd) == 1


@pytest.mark.slow
def test_real_killed_runner_resumes_to_the_same_numbers(real):
    grid, base, _ = real
    # --set pins the lr axis, so both cells are one run: A's ok run, by the same id.
    # (--workers 2: the same threads per run as the reference, hence the same floats.)
    cmd = [sys.executable, "-m", "ablations", "run", str(grid), "--results", str(base / "b"),
           "--workers", "2", "--set", "train.lr=3.0e-3"]
    runner = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    runs = base / "b" / "tiny" / "runs"
    deadline = time.monotonic() + 60
    while not list(runs.glob("*/checkpoints/*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.send_signal(signal.SIGKILL)                  # no clean-up of any kind
    runner.wait()
    (killed,) = runs.iterdir()
    while lock_held(killed) and time.monotonic() < deadline:   # the child dies with it
        time.sleep(0.05)
    assert not lock_held(killed) and not store.is_done(killed)
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert attempts(killed) == 2 and "1 to run" in done.stderr
    a, b = results_of(base / "a"), results_of(base / "b")
    assert b[killed.name]["status"] == a[killed.name]["status"] == "ok"
    assert b[killed.name]["metrics"] == a[killed.name]["metrics"]
    assert b[killed.name]["steps"] == a[killed.name]["steps"] == 300


@pytest.mark.slow
def test_dry_run_builds_every_model_and_writes_nothing(real, capsys, tmp_path):
    grid, _, _ = real
    code = cli(["run", str(grid), "--results", str(tmp_path / "r"), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and not (tmp_path / "r").exists()
    assert "lr=0.003" in out and "lr=1e+09" in out and "2 runs (2 to train)" in out
    from ablations import grid as grids
    from transformer import ModelConfig, build_model
    (cfg, *_) = [r.config["model"] for r in grids.expand(grids.load(grid))]
    params = sum(p.numel() for p in build_model(ModelConfig(**cfg)).parameters())
    assert "1 distinct models" in out and f"{params:,}" in out   # meta build == real build


# ------------------------------------------------------------- the pool (fake child)
def test_pool_splits_cpu_threads_and_runs_workers_at_once(tmp_path, fake, capsys):
    grid = fake_grid(tmp_path, [1.0e-3, 2.0e-3, 3.0e-3, 4.0e-3])
    os.environ["FAKE_SLEEP"] = "0.6"
    try:
        code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--workers", "2")
    finally:
        del os.environ["FAKE_SLEEP"]
    log = fake()
    assert code == 0 and len(log) == 4 and most_at_once(log) == 2
    assert {e["OMP_NUM_THREADS"] for e in log} == {str(max(1, cpu_count() // 2))}
    assert "[4/4] ok" in err and "4 ok" in err                   # plain lines off a terminal


def test_gpu_slots_pin_devices_without_changing_run_ids(tmp_path, fake, capsys):
    grid = fake_grid(tmp_path, [1.0e-3, 2.0e-3, 3.0e-3, 4.0e-3])
    assert cli(["run", str(grid), "--results", str(tmp_path / "cpu"), "--dry-run"]) == 0
    cpu_out = capsys.readouterr()
    assert cli(["run", str(grid), "--results", str(tmp_path / "gpu"), "--devices", "0", "1"]) == 0
    log = fake()
    assert {e["CUDA_VISIBLE_DEVICES"] for e in log} == {"0", "1"}
    for e in log:
        same_gpu = [o for o in log if o is not e and o["CUDA_VISIBLE_DEVICES"] ==
                    e["CUDA_VISIBLE_DEVICES"]]
        assert not any(o["start"] < e["end"] and e["start"] < o["end"] for o in same_gpu)
        assert (e["cfg"]["train"]["accelerator"], e["cfg"]["train"]["devices"]) == ("gpu", 1)
    # one GPU per run computes what one CPU process does: the same run ids
    ids = lambda r: sorted(p.name for p in (tmp_path / r / "fake" / "runs").iterdir())  # noqa
    assert all(i in cpu_out.out for i in ids("gpu"))
    # DDP: slots of train.devices GPUs each
    ddp = ["--set", "train.devices=2", "train.strategy=ddp"]
    assert cli(["run", str(grid), "--results", str(tmp_path / "ddp"), "--devices", "0,1,2,3",
                *ddp]) == 0
    assert {e["CUDA_VISIBLE_DEVICES"] for e in fake()[4:]} == {"0,1", "2,3"}
    assert {e["cfg"]["train"]["devices"] for e in fake()[4:]} == {2}
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "x", "--devices", "0,1,2",
                        *ddp)
    assert code == 2 and "3 GPUs do not split into slots of train.devices=2" in err


def test_crash_and_divergence_are_isolated_and_retryable(tmp_path, fake, capsys):
    grid = fake_grid(tmp_path, [1.0e-3, 1.0e+9, 2.0e+9, 3.0e+9])
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r")
    assert code == 1 and len(fake()) == 4                      # all four ran; two crashed
    assert "1 ok, 1 diverged, 2 failed" in err and "--retry-failed" in err
    assert "runs that did not finish ok:" in err and "loss is nan" in err
    assert "killed by SIGSEGV" in err and "exit code 7" in err
    crashed = [r for r in results_of_fake(tmp_path / "r") if "SIGSEGV" in (r["reason"] or "")]
    assert crashed[0]["status"] == "failed" and "boom" in crashed[0]["reason"]
    assert crashed[0]["config"]["train"]["lr"] == 2e9
    assert run_cli(capsys, "run", grid, "--results", tmp_path / "r")[0] == 1
    assert len(fake()) == 4                                    # finished, even if failed
    assert run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--retry-failed")[0] == 1
    assert sorted(e["cfg"]["train"]["lr"] for e in fake()[4:]) == [2e9, 3e9]


def test_run_folders_the_grid_no_longer_has_are_counted_kept_and_pruned(tmp_path, fake,
                                                                         capsys):
    runs = tmp_path / "r" / "fake" / "runs"
    assert run_cli(capsys, "run", fake_grid(tmp_path, [1e-3, 2e-3]), "--results",
                   tmp_path / "r")[0] == 0
    first = sorted(p.name for p in runs.iterdir())
    grid = fake_grid(tmp_path, [1e-3, 3e-3])                     # the grid changed
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r")
    assert code == 0 and "1 run folder(s) under runs/ are not runs of this grid" in err
    assert "--prune" in err and len(list(runs.iterdir())) == 3   # kept: nothing is lost
    gone = next(n for n in first if n not in {e["run_id"] for e in
                store.read_json(tmp_path / "r" / "fake" / store.MANIFEST)["runs"]})
    with store.run_lock(runs / gone) as mine:                    # another process trains it
        assert mine
        code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--prune")
    assert code == 0 and "kept 1 another process is training" in err
    assert (runs / gone).is_dir()
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--prune")
    assert code == 0 and "deleted 1 run folder(s)" in err
    assert not (runs / gone).exists() and len(list(runs.iterdir())) == 2
    assert len(fake()) == 3                                      # nothing trained twice
    assert "not runs of this grid" not in run_cli(capsys, "run", grid, "--results",
                                                  tmp_path / "r")[1]


def results_of_fake(results: Path) -> list[dict]:
    return [store.read_json(p) for p in (results / "fake" / "runs").glob("*/result.json")]


@pytest.mark.slow
def test_two_runners_never_train_the_same_run(tmp_path, fake):
    grid = fake_grid(tmp_path, [1.0e-3, 2.0e-3, 3.0e-3, 4.0e-3, 5.0e-3, 6.0e-3])
    cmd = [sys.executable, "-m", "ablations", "run", str(grid), "--results", str(tmp_path / "r")]
    env = {**os.environ, "FAKE_SLEEP": "0.5"}
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=60)[1] for p in procs]
    # a runner that finishes while the other still holds a run sees the grid unfinished:
    # exit 1, saying so; the other one finishes it
    for p, out in zip(procs, outs):
        assert p.returncode == 0 or (p.returncode == 1 and "running in another process"
                                     in out.split("runs:")[-1]), out
    assert 0 in [p.returncode for p in procs], outs
    runs = [e["run"] for e in fake()]
    assert len(runs) == 6 and len(set(runs)) == 6              # each run trained once
    assert len(results_of_fake(tmp_path / "r")) == 6
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and len(fake()) == 6, again.stderr


def test_plugins_reach_the_child(tmp_path, fake, capsys, monkeypatch):
    pkg = tmp_path / "plug"
    pkg.mkdir()
    (pkg / "my_variants.py").write_text(textwrap.dedent("""
        from transformer.positional import PositionalEncoding
        from transformer.registry import POSITIONAL
        if "zero_pos" not in POSITIONAL:
            @POSITIONAL.register("zero_pos")
            class ZeroPos(PositionalEncoding):
                '''A plugin variant: adds nothing.'''
    """))
    monkeypatch.chdir(pkg)                                     # plugins import from cwd
    monkeypatch.syspath_prepend(str(pkg))
    grid = fake_grid(tmp_path, [1.0e-3])
    grid.write_text(grid.read_text().replace("n_layers: 1", "n_layers: 1, pos: zero_pos"))
    code, _ = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--plugin", "my_variants")
    (entry,) = fake()
    assert code == 0 and entry["ABLATE_PLUGINS"] == "my_variants"
    assert str(pkg) in entry["PYTHONPATH"].split(os.pathsep)
    assert entry["cfg"]["model"]["pos"] == "zero_pos"


@pytest.mark.slow
def test_submitit_local_executor_runs_the_array(tmp_path, fake, capsys):
    pytest.importorskip("submitit")
    grid = fake_grid(tmp_path, [1.0e-3, 2.0e-3, 1.0e+9])
    args = ["run", grid, "--results", tmp_path / "r", "--executor", "slurm",
            "--submitit-cluster", "local", "--array-parallelism", "2", "--time", "5"]
    code, err = run_cli(capsys, *args)
    assert code == 0 and "2 ok, 1 diverged" in err
    assert len(fake()) == 3 and len(results_of_fake(tmp_path / "r")) == 3
    assert list((tmp_path / "r" / "fake" / "slurm").iterdir())     # submitit's job folders
    code, err = run_cli(capsys, *args)
    assert code == 0 and "0 to run" in err and len(fake()) == 3


def test_slurm_array_script(tmp_path, monkeypatch, capsys):
    """The real SLURM branch, up to sbatch (a stand-in that records what it was given)."""
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).write_text(f"#!/bin/sh\ncp \"$(eval echo \\${{$#}})\" "
                                    f"{tmp_path}/script.sh\necho Submitted batch job 4242\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    grid = fake_grid(tmp_path, [1.0e-3, 2.0e-3, 3.0e-3])
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--executor", "slurm",
                        "--partition", "gpu", "--time", "30", "--gpus-per-task", "1",
                        "--cpus-per-task", "4", "--array-parallelism", "2")
    assert code == 0 and "submitted 3 runs as SLURM array 4242" in err
    script = (tmp_path / "script.sh").read_text()
    for flag in ("--array=0-2%2", "--partition=gpu", "--time=30", "--gpus-per-node=1",
                 "--cpus-per-task=4", "--job-name=ablate-fake"):
        assert f"#SBATCH {flag}\n" in script, flag
    configs = [store.read_json(p) for p in (tmp_path / "r" / "fake" / "runs").glob("*/config.json")]
    assert len(configs) == 3 and {c["train"]["accelerator"] for c in configs} == {"gpu"}


def test_slurm_without_sbatch_is_bad_input(tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))            # no sbatch, no srun
    grid = fake_grid(tmp_path, [1.0e-3])
    code, err = run_cli(capsys, "run", grid, "--results", tmp_path / "r", "--executor", "slurm")
    assert code == 2 and "not found on this machine" in err and not (tmp_path / "r").exists()


def test_list_shows_variants_tasks_and_grids(capsys):
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("pos ", "alibi", "layernorm", "swiglu", "lstm", "order", "mqar",
                 "positional_order"):
        assert word in out, word
