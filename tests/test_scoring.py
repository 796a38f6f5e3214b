"""Evaluation and diagnostics (ablations/training/scoring.py) on bare `build_model`
networks: no Trainer, no LightningModule."""
import math

import pytest
import torch

from ablations.tasks import build_task
from ablations.training.scoring import attention_diagnostics, grad_norms, score
from transformer import ModelConfig, build_model
from transformer.attention import ATTN_SCALE, Attention

ARCHS = ["decoder", "encoder_decoder", "lstm"]


def setup(arch, **model):
    task = build_task({"name": "copy"}, 0, arch)
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch=arch, vocab_size=task.vocab_size, d_model=16, n_heads=2,
                                  n_layers=2, **model))
    return net, task, task.val_sets(2, 4, "cpu")


@pytest.mark.parametrize("arch", ARCHS)
def test_evaluate_averages_the_task_metrics_over_each_set(arch):
    net, task, val_sets = setup(arch)
    net.train()
    out = score(net, task, val_sets)
    assert net.training                                          # its mode comes back
    assert set(out) == {"val_loss", "val_acc", "val_exact"}
    with torch.no_grad():
        net.eval()
        losses = [float(task.metrics(net(*net.inputs(b)), b)["loss"]) for b in val_sets[""]]
    assert out["val_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    assert 0 <= out["val_acc"] <= 1


def test_evaluate_reports_a_set_the_model_cannot_run():
    net, task, val_sets = setup("decoder", pos="learned", max_len=8)
    long = {k: v.repeat(1, 4) for k, v in val_sets[""][0].items()}         # past max_len
    short = {k: v[:, :8] for k, v in val_sets[""][0].items()}
    out = score(net, task, {"": [short], "@long": [long]})
    assert "val_loss" in out and "val_loss@long" not in out
    assert "max_len=8" in out["val_error@long"]


@pytest.mark.parametrize("arch, n_maps", [("decoder", 2), ("encoder_decoder", 2 + 2 * 2),
                                          ("lstm", 0)])
def test_attention_diagnostics_per_attention_layer(arch, n_maps):
    net, _, val_sets = setup(arch)
    out = attention_diagnostics(net, val_sets[""][0])
    assert net.training
    assert sorted(k for k in out if k.startswith("attn_entropy/")) == [
        f"attn_entropy/layer{i}" for i in range(n_maps)]
    fracs = [out[f"attn_entropy_frac/layer{i}"] for i in range(n_maps)]
    assert all(0 < f <= 1 + 1e-6 for f in fracs)
    if n_maps:
        assert out["attn_entropy_frac"] == pytest.approx(sum(fracs) / n_maps)
    else:
        assert out == {}


@pytest.mark.parametrize("arch", ARCHS)
def test_grad_norms_per_block_and_in_total(arch):
    net, task, _ = setup(arch)
    assert grad_norms(net) == {}                                 # no gradients yet
    batch = task.train_batch(0, 4, "cpu")
    net.loss(*net.inputs(batch), target=batch["target"]).backward()
    norms = grad_norms(net)
    n_blocks = len(net.blocks())
    attention = [m for m in net.modules() if isinstance(m, Attention)]
    qk = ["grad_norm_qk"] if attention else []
    assert list(norms) == [f"grad_norm/layer{i}" for i in range(n_blocks)] + qk + ["grad_norm"]
    if attention:
        # the query and key rows and the value rows together are every head projection
        heads = [m.qkv_proj if hasattr(m, "qkv_proj") else m.kv_proj for m in attention]
        cross_q = [m.q_proj for m in attention if hasattr(m, "q_proj")]
        v_rows = sum(lin.weight.grad[-(m.n_kv_heads * m.head_dim):].pow(2).sum()
                     + lin.bias.grad[-(m.n_kv_heads * m.head_dim):].pow(2).sum()
                     for lin, m in zip(heads, attention)).item()
        every = sum(p.grad.pow(2).sum().item() for lin in heads + cross_q
                    for p in lin.parameters())
        assert norms["grad_norm_qk"] ** 2 == pytest.approx(every - v_rows, rel=1e-4)
    whole = math.sqrt(sum(p.grad.pow(2).sum().item() for p in net.parameters()
                          if p.grad is not None))
    assert norms["grad_norm"] == pytest.approx(whole, rel=1e-5)
    assert sum(norms[f"grad_norm/layer{i}"] ** 2 for i in range(n_blocks)) <= whole ** 2 * 1.0001
    assert grad_norms(net, per_layer=False) == {"grad_norm": norms["grad_norm"]}


@pytest.mark.parametrize("scale", ATTN_SCALE.names())
def test_attn_scale_rel_is_the_factor_in_units_of_inverse_sqrt_dk(scale):
    """sqrt -> 1, none -> sqrt(d_k), dk -> 1/sqrt(d_k), learned starts at 1 and
    learned_unit at the unscaled sqrt(d_k)."""
    cfg = ModelConfig(vocab_size=11, d_model=32, n_heads=2, d_head=16, n_layers=1,
                      attn_scale=scale)
    net = build_model(cfg)
    batch = {"input": torch.randint(0, 11, (2, 8))}
    want = {"sqrt": 1.0, "none": 4.0, "dk": 0.25, "learned": 1.0,
            "learned_unit": 4.0}.get(scale)
    got = attention_diagnostics(net, batch)["attn_scale_rel"]
    assert got > 0
    if want is not None:
        assert got == pytest.approx(want, rel=1e-5)
