"""Measurement runs: the critical path of an autograd graph, the unrolled recurrence,
FLOP counting, the `layer_time` task through `ablate train`, and the `parallelism`
grid end to end (smoke size)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from ablations.cli import main
from ablations.config import nest, parse_sets, resolve, run_id
from ablations.measure import critical_path, forward_flops
from ablations.measure.unroll import unrolled
from ablations.tasks.layer_time import body
from transformer import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "ablations" / "grids" / "parallelism.yaml"


# ------------------------------------------------------------------ critical path
def test_critical_path_of_hand_made_graphs():
    x = torch.randn(3, requires_grad=True)
    assert critical_path(((x * 2).sin() + 1).exp()) == 4            # mul sin add exp
    a = x.sin()
    assert critical_path(a + a.cos()) == 3                          # longest branch: sin cos add
    assert critical_path(x.view(3, 1).t().reshape(-1).sin()) == 1   # views are free
    y = torch.randn(3, requires_grad=True)
    assert critical_path((x * y).sum() + y.exp().exp().exp().sum()) == 5   # exp x3, sum, add
    assert critical_path(x) == 0 and critical_path(torch.randn(2)) == 0    # no graph


def test_critical_path_of_a_deep_chain_needs_no_recursion():
    x = torch.randn(2, requires_grad=True)
    y = x
    for _ in range(5000):                      # deeper than Python's recursion limit
        y = y * 1.0001
    assert critical_path(y) == 5000


# ------------------------------------------------------------ the unrolled recurrence
@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_unrolled_recurrence_is_the_same_layer_with_the_same_weights(cell):
    torch.manual_seed(0)
    rnn = cell(6, 5, num_layers=2, batch_first=True)
    x = torch.randn(3, 7, 6)
    ref = unrolled(rnn)
    assert torch.allclose(ref(x), rnn(x)[0], atol=1e-5)
    ref(x).sum().backward()                    # the weights are shared, not copied
    assert all(p.grad is not None for p in rnn.parameters())


def layer_paths(arch: str, lengths, batch: int = 2) -> list[int]:
    cfg = ModelConfig(arch=arch, vocab_size=2, d_model=16, n_heads=2, n_layers=1,
                      pos="none", max_len=128)
    _, _, reference = body(build_model(cfg))
    return [critical_path(reference(torch.randn(batch, T, 16, requires_grad=True)))
            for T in lengths]


def test_lstm_critical_path_grows_linearly_and_attentions_is_constant():
    lengths = [8, 16, 32, 64]
    lstm = layer_paths("lstm", lengths)
    steps = {(b - a) / (t2 - t1) for a, b, t1, t2 in zip(lstm, lstm[1:], lengths, lengths[1:])}
    assert len(steps) == 1 and steps.pop() >= 3           # the same ops for every step
    assert len(set(layer_paths("decoder", lengths))) == 1
    assert layer_paths("decoder", [64])[0] * 10 < lstm[-1]
    assert layer_paths("lstm", [16], batch=1) == layer_paths("lstm", [16], batch=5)


# ----------------------------------------------------------------------- FLOPs
def test_forward_flops_counts_matmuls_the_recurrence_and_cpu_attention():
    lin = nn.Linear(8, 4)
    assert forward_flops(lambda: lin(torch.randn(5, 8))) == 2 * 5 * 8 * 4
    q = torch.randn(2, 3, 10, 4)
    sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert forward_flops(sdpa) == 4 * 2 * 3 * 10 * 10 * 4  # QK^T and PV, mask not subtracted
    rnn = nn.LSTM(8, 8, batch_first=True)
    x = torch.randn(2, 5, 8)
    flops = forward_flops(lambda: unrolled(rnn)(x))
    assert 2 * 2 * 5 * 8 * 8 * 8 <= flops < 1.1 * 2 * 2 * 5 * 8 * 8 * 8   # 8 d^2 per token


# ------------------------------------------------------- a measurement run, in process
TINY = ["task.name=layer_time", "task.seq_len=32", "task.peak_size=64", "model.d_model=16",
        "model.n_heads=2", "train.batch_size=2", "train.steps=2"]


def sets(*extra):
    return [a for kv in (*TINY, *extra) for a in ("--set", kv)]


@pytest.mark.parametrize("arch", ["lstm", "decoder"])
def test_layer_time_run_writes_a_result_like_a_trained_run(tmp_path, arch):
    assert main(["train", "--results", str(tmp_path), *sets(f"model.arch={arch}")]) == 0
    rid = run_id(resolve([nest(parse_sets([*TINY, f"model.arch={arch}"]))]))
    rdir = tmp_path / "train" / "runs" / rid
    res = json.loads((rdir / "result.json").read_text())
    m = res["metrics"]
    assert res["status"] == "ok" and res["steps"] == 2 and res["tokens"] == 2 * 2 * 32
    assert res["device"].startswith("cpu (") and res["params"] > 0 and res["train_s"] > 0
    assert res["config"]["task"]["name"] == "layer_time"
    for key in ("step_ms", "step_gflop", "achieved_gflops", "peak_gflops", "mfu",
                "critical_path", "projected_ms", "threads", "load_1m"):
        assert isinstance(m[key], float) and m[key] == m[key], key
    from ablations.metric_names import known
    assert set(m) <= known(["layer_time"], None)        # what grids may name, declared
    assert m["projected_ms"] == max(m["projected_compute_ms"], m["projected_latency_ms"])
    assert m["projected_latency_ms"] == pytest.approx(2 * m["critical_path"] * 5e-3)
    assert m["achieved_gflops"] == pytest.approx(m["step_gflop"] / m["step_ms"] * 1e3)
    assert (m["critical_path"] > 32) == (arch == "lstm")
    assert not (rdir / "checkpoints").exists() and not (rdir / "metrics.csv").exists()


def test_layer_time_threads_and_bad_params(tmp_path, capsys):
    assert main(["train", "--results", str(tmp_path), *sets("model.arch=lstm",
                 "train.threads=1")]) == 0
    res = next((tmp_path / "train" / "runs").glob("*/result.json"))
    assert json.loads(res.read_text())["metrics"]["threads"] == 1.0
    assert main(["train", "--results", str(tmp_path), *sets("task.seq_len=0")]) == 2
    assert "task.seq_len: must be >= 1" in capsys.readouterr().err
    assert main(["train", "--results", str(tmp_path), *sets("model.arch=encoder_decoder")]) == 2


# ------------------------------------------------------------ the grid, end to end
@pytest.mark.slow
def test_parallelism_grid_smoke_runs_and_reports(tmp_path):
    """The shipped grid at its smoke scale, lengths cut to the two its checks name."""
    spec = yaml.safe_load(GRID.read_text())
    spec["axes"]["task.seq_len"] = [16, 1024]
    grid = tmp_path / "parallelism.yaml"
    grid.write_text(yaml.safe_dump(spec, sort_keys=False))
    results = tmp_path / "r"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "ablations", "run", str(grid), "--smoke",
                          "--seeds", "0,1", "--workers", "2", "--results", str(results)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "16 runs: 16 ok" in run.stderr
    rep = subprocess.run([sys.executable, "-m", "ablations", "report", "--results",
                          str(results), "parallelism"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    out = results / "parallelism"
    assert len(list(out.glob("*.png"))) == len(spec["plots"])
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert len(verdicts) == len(spec["checks"])
    # deterministic metrics: decided even at smoke size, on any machine
    assert [v["verdict"] for v in verdicts if v["metric"] in ("critical_path",
            "projected_ms")] == ["supported"] * 4, verdicts
    assert "critical_path" in (out / "summary.csv").read_text()
