"""Training: `ablate train` end to end, determinism, exact resume after SIGKILL,
divergence, bad input, DDP on two CPU processes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablations.cli import main
from ablations.config import nest, parse_sets, resolve, run_id
from ablations.training.optim import lr_lambda
from ablations.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["task.name=copy", "model.d_model=16", "model.n_heads=2", "model.n_layers=1",
        "train.batch_size=8", "train.eval_batches=2", "train.log_every=5"]


def sets(*extra):
    return [a for kv in (*TINY, *extra) for a in ("--set", kv)]


def result_of(results, name, extra=()):
    rid = run_id(resolve([nest(parse_sets([*TINY, *extra]))]))
    path = Path(results) / name / "runs" / rid
    return json.loads((path / "result.json").read_text()), path


def env():
    e = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return e


@pytest.mark.slow
def test_train_writes_a_complete_run(tmp_path):
    assert main(["train", "--results", str(tmp_path), *sets("train.steps=30",
                 "train.eval_every=10", "train.diag_every=10")]) == 0
    result, path = result_of(tmp_path, "train", ["train.steps=30", "train.eval_every=10",
                                                 "train.diag_every=10"])
    assert result["status"] == "ok" and result["steps"] == 30
    for key in ("run_id", "metrics", "config", "params", "tokens_per_s", "wall_s", "git_sha",
                "versions", "device", "peak_mem_mb"):
        assert key in result
    assert {"val_loss", "val_acc", "val_exact", "attn_entropy_frac"} <= set(result["metrics"])
    assert result["tokens_per_s"] > 0 and result["params"] > 0
    assert json.loads((path / "config.json").read_text()) == result["config"]
    rows = (path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,metric,value"
    names = {r.split(",")[1] for r in rows[1:]}
    assert {"train_loss", "lr", "grad_norm", "val_loss", "grad_norm/layer0",
            "attn_entropy/layer0"} <= names
    from ablations.metric_names import known
    written = {n.partition("/layer")[0] for n in names | set(result["metrics"])}
    assert written <= known(["copy"], None), written - known(["copy"], None)
    steps = sorted({int(r.split(",")[0]) for r in rows[1:] if ",val_loss," in r})
    assert steps == [0, 10, 20, 30]
    # a second identical command trains nothing
    mtime = (path / "result.json").stat().st_mtime
    assert main(["train", "--results", str(tmp_path), *sets("train.steps=30",
                 "train.eval_every=10", "train.diag_every=10")]) == 0
    assert (path / "result.json").stat().st_mtime == mtime


@pytest.mark.slow
def test_same_config_and_seed_give_identical_numbers(tmp_path):
    for name in ("a", "b"):
        assert main(["train", "--results", str(tmp_path), "--name", name,
                     *sets("train.steps=20")]) == 0
    (a, _), (b, _) = (result_of(tmp_path, n, ["train.steps=20"]) for n in "ab")
    assert a["metrics"] == b["metrics"]
    assert main(["train", "--results", str(tmp_path), "--name", "c",
                 *sets("train.steps=20", "train.seed=1")]) == 0
    c, _ = result_of(tmp_path, "c", ["train.steps=20", "train.seed=1"])
    assert c["metrics"]["val_loss"] != a["metrics"]["val_loss"]


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    extra = ["train.steps=160", "train.ckpt_every=20", "train.eval_every=40", "model.pos=rope"]
    cmd = [sys.executable, "-m", "ablations", "train", "--results", str(tmp_path / "killed"),
           *sets(*extra)]
    rid = run_id(resolve([nest(parse_sets([*TINY, *extra]))]))
    run = tmp_path / "killed" / "train" / "runs" / rid
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (not (run / "checkpoints" / "last.ckpt").exists() and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "result.json").exists(), "killed too late to test resume"
    assert subprocess.run(cmd, env=env(), capture_output=True).returncode == 0
    whole_cmd = [c if c != str(tmp_path / "killed") else str(tmp_path / "whole") for c in cmd]
    assert subprocess.run(whole_cmd, env=env(), capture_output=True).returncode == 0
    resumed, _ = result_of(tmp_path / "killed", "train", extra)
    whole, _ = result_of(tmp_path / "whole", "train", extra)
    assert resumed["metrics"] == whole["metrics"]
    val = lambda p: [r for r in (p / "metrics.csv").read_text().splitlines() if "val_loss," in r]
    assert val(run) == val(tmp_path / "whole" / "train" / "runs" / rid)   # no duplicated rows


@pytest.mark.slow
def test_divergence_is_recorded_with_its_step(tmp_path):
    extra = ["train.steps=50", "train.lr=1.0e+30", "train.grad_clip=0", "train.warmup=0"]
    assert main(["train", "--results", str(tmp_path), *sets(*extra)]) == 0   # a result
    result, _ = result_of(tmp_path, "train", extra)
    assert result["status"] == "diverged"
    assert result["metrics"]["diverged_step"] < 50 and "non-finite" in result["reason"]


@pytest.mark.parametrize("bad, message", [
    ("model.pos=ropee", "model.pos: unknown pos 'ropee' (did you mean 'rope'?); valid:"),
    ("train.steps=ten", "train.steps: expected int"),
    ("train.schedule=linear", "train.schedule: unknown value 'linear'; valid: cosine, noam"),
    ("modle.pos=rope", "modle.pos: keys are section.field"),
    ("model.d_model=31", "model.d_model: 31 is not divisible by n_heads=2"),
    ("task.seq_len=0", "task.seq_len"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, bad, message):
    proc = subprocess.run([sys.executable, "-m", "ablations", "train", "--results",
                           str(tmp_path), *sets(bad)], env=env(), capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_lr_schedules():
    cos = lr_lambda(TrainConfig(steps=100, warmup=10, schedule="cosine", min_lr_ratio=0.1))
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(99) == pytest.approx(0.1) and 0.1 < cos(50) < 1.0
    noam = lr_lambda(TrainConfig(steps=100, warmup=16, schedule="noam"))
    assert noam(15) == pytest.approx(1.0) and noam(63) == pytest.approx(0.5)
    const = lr_lambda(TrainConfig(steps=100, warmup=0, schedule="constant"))
    assert const(0) == const(99) == 1.0


@pytest.mark.slow
def test_ddp_spawn_on_two_cpu_processes(tmp_path):
    extra = ["train.steps=10", "train.devices=2", "train.strategy=ddp_spawn"]
    assert main(["train", "--results", str(tmp_path), *sets(*extra)]) == 0
    result, path = result_of(tmp_path, "train", extra)
    assert result["status"] == "ok" and result["steps"] == 10
    assert result["device"].endswith("x2")


@pytest.mark.slow
def test_ddp_reexecuting_command_line(tmp_path):
    extra = ["train.steps=10", "train.devices=2", "train.strategy=ddp"]
    proc = subprocess.run([sys.executable, "-m", "ablations", "train", "--results",
                           str(tmp_path), *sets(*extra)], env=env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result, _ = result_of(tmp_path, "train", extra)
    assert result["status"] == "ok" and result["device"].endswith("x2")


@pytest.mark.slow
def test_bf16_mixed_precision_runs_on_cpu(tmp_path):
    extra = ["train.steps=5", "train.precision=bf16-mixed"]
    assert main(["train", "--results", str(tmp_path), *sets(*extra)]) == 0


@pytest.mark.slow
def test_tensorboard_logger_beside_metrics_csv_and_resume_appends(tmp_path):
    """train.logger=tensorboard writes event files in the run's folder; the logger is an
    execution setting (same run id, same numbers), and a resumed run logs into the same
    folder, so TensorBoard shows one run."""
    extra = ["train.steps=20", "train.ckpt_every=10", "train.eval_every=10"]
    assert main(["train", "--results", str(tmp_path / "plain"), *sets(*extra)]) == 0
    with_tb = [*extra, "train.logger=tensorboard"]
    assert main(["train", "--results", str(tmp_path / "tb"), *sets(*with_tb)]) == 0
    plain, _ = result_of(tmp_path / "plain", "train", extra)
    logged, path = result_of(tmp_path / "tb", "train", with_tb)
    assert plain["run_id"] == logged["run_id"] and plain["metrics"] == logged["metrics"]
    events = sorted((path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and (path / "tensorboard" / "hparams.yaml").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(path / "tensorboard"))
    acc.Reload()
    assert {"train_loss", "val_loss"} <= set(acc.Tags()["scalars"])
    # a resumed run (result removed, checkpoint at step 10 kept) logs into the same folder
    (path / "result.json").unlink()
    assert main(["train", "--results", str(tmp_path / "tb"), *sets(*with_tb)]) == 0
    assert {p.parent for p in (path / "tensorboard").rglob("events.out.tfevents.*")} == \
        {path / "tensorboard"}


def test_a_logger_is_one_choice_validated_early():
    with pytest.raises(Exception, match="train.logger: unknown value 'tensorbord' "
                                        r"\(did you mean 'tensorboard'\?\)"):
        resolve([nest(parse_sets([*TINY, "train.logger=tensorbord"]))])
