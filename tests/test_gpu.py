"""GPU checks: run where CUDA is present, skipped elsewhere (the CPU suite covers the
same code paths without a device): bf16 training, the KV cache against recomputation in
bf16, one GPU per `--devices` slot, and DDP over two GPUs."""
from __future__ import annotations

import json

import pytest
import torch

from ablations import store
from ablations.cli import main as cli
from transformer import ModelConfig, build_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TINY = ["--set", "task.name=copy", "--set", "model.d_model=32", "--set", "model.n_layers=1",
        "--set", "train.steps=30", "--set", "train.eval_every=10", "--set",
        "train.accelerator=gpu"]


def only_result(results):
    (path,) = results.glob("*/runs/*/result.json")
    return json.loads(path.read_text())


@cuda
@pytest.mark.parametrize("precision", ["bf16-mixed", "32"])
def test_a_run_trains_on_the_gpu(tmp_path, precision):
    assert cli(["train", "--results", str(tmp_path), *TINY, "--set",
                f"train.precision={precision}"]) == 0
    res = only_result(tmp_path)
    assert res["status"] == "ok" and not res["device"].startswith("cpu")
    assert all(v == v for v in res["metrics"].values() if isinstance(v, float))


@cuda
def test_kv_cache_matches_recomputation_in_bf16():
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=97, d_model=64, n_heads=4, n_layers=2,
                                    pos="rope")).cuda().eval()
    tokens = torch.randint(0, 97, (2, 40), device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        full = model.full_logits(tokens, None).float()
        state = model.init_state(tokens[:, :8], 40, None)
        steps = [model.decode(tokens[:, :8], state)]
        steps += [model.decode(tokens[:, i:i + 1], state) for i in range(8, 40)]
        incremental = torch.cat(steps, dim=1).float()
    assert torch.allclose(incremental, full, atol=5e-2, rtol=5e-2)


@cuda
def test_devices_slots_run_on_their_own_gpu(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("""
name: slots
claim: x
task: {name: copy}
base:
  model: {d_model: 32, n_layers: 1}
  train: {steps: 20, eval_every: 10}
axes:
  model.pos: [rope, none]
seeds: [0]
""")
    gpus = ",".join(str(i) for i in range(min(2, torch.cuda.device_count())))
    assert cli(["run", str(grid), "--results", str(tmp_path / "r"), "--devices", gpus]) == 0
    for path in (tmp_path / "r" / "slots" / "runs").glob("*/result.json"):
        res = store.read_json(path)
        assert res["status"] == "ok" and not res["device"].startswith("cpu")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ddp_over_two_gpus(tmp_path):
    assert cli(["train", "--results", str(tmp_path), *TINY, "--set", "train.devices=2",
                "--set", "train.strategy=ddp"]) == 0
    res = only_result(tmp_path)
    assert res["status"] == "ok" and res["device"].endswith("x2")
