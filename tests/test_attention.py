"""The attention kernels (transformer/attend.py): the block-causal CPU training path
equals SDPA, it is chosen only where it pays, and it can be switched off."""
import pytest
import torch
import torch.nn.functional as F

from transformer import ModelConfig, build_model
from transformer.attend import (BlockCausalAttention, attend, force_sdpa, get_backend,
                                set_backend, use_block_causal)


@pytest.mark.parametrize("T,block", [(7, 7), (7, 3), (130, 64), (64, 64)])
def test_block_causal_attention_equals_sdpa(T, block):
    """The training path for short causal sequences on CPU: values and gradients equal
    SDPA's causal attention, including a partial last block."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, T, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grad = torch.randn(2, 3, T, 8, dtype=torch.float64)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)
    got = BlockCausalAttention.apply(q, k, v, 0.3, block)
    assert torch.allclose(got, want, atol=1e-12)
    for g, w in zip(torch.autograd.grad(got, (q, k, v), grad),
                    torch.autograd.grad(want, (q, k, v), grad)):
        assert torch.allclose(g, w, atol=1e-12)


def test_block_causal_attention_only_where_it_pays():
    q = torch.randn(2, 4, 32, 16, requires_grad=True)
    assert use_block_causal(q, q, dropout=0.0) == 32               # one block of 32
    assert use_block_causal(torch.randn(1, 4, 512, 16, requires_grad=True),
                            torch.randn(1, 4, 512, 16), dropout=0.0) == 64
    assert use_block_causal(q, q, dropout=0.1) == 0                # SDPA does dropout
    assert use_block_causal(q, q[:, :2], dropout=0.0) == 0         # grouped-query: SDPA
    with torch.no_grad():
        assert use_block_causal(q, q, dropout=0.0) == 0            # inference: SDPA
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert use_block_causal(q, q, dropout=0.0) == 0
    big = torch.randn(64, 8, 1024, 16, requires_grad=True)         # too many scores to keep
    assert use_block_causal(big, big, dropout=0.0) == 0


def test_forcing_sdpa_matches_the_block_path(monkeypatch):
    """A causal model training on CPU takes the block-causal path; under force_sdpa()
    it takes SDPA instead and gives the same loss and gradients within float rounding."""
    calls = []
    original = BlockCausalAttention.apply
    monkeypatch.setattr(BlockCausalAttention, "apply", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2,
                                    pos="rope")).train()
    x, target = torch.randint(0, 50, (3, 100)), torch.randint(0, 50, (3, 100))

    def loss_and_grads():
        loss = model.loss(x, target=target)
        return loss, torch.autograd.grad(loss, list(model.parameters()))

    block_loss, block_grads = loss_and_grads()
    assert len(calls) == 2                                          # one per layer
    with force_sdpa():
        assert get_backend() == "sdpa"
        sdpa_loss, sdpa_grads = loss_and_grads()
    assert len(calls) == 2 and get_backend() == "auto"
    torch.testing.assert_close(sdpa_loss, block_loss, atol=1e-6, rtol=1e-6)
    for s, b in zip(sdpa_grads, block_grads):
        torch.testing.assert_close(s, b, atol=1e-5, rtol=1e-5)


def test_backend_setting_is_validated_and_restored():
    with pytest.raises(ValueError, match="unknown attention backend 'flash'"):
        set_backend("flash")
    set_backend("sdpa")
    try:
        assert get_backend() == "sdpa"
    finally:
        set_backend("auto")
    with pytest.raises(RuntimeError):
        with force_sdpa():
            raise RuntimeError
    assert get_backend() == "auto"


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_recorded_path_equals_the_fast_one(is_causal, kv_heads):
    """attend(record=...) computes the same attention explicitly and keeps the weights."""
    torch.manual_seed(0)
    q = torch.randn(2, 4, 9, 8, dtype=torch.float64)
    k, v = (torch.randn(2, kv_heads, 9, 8, dtype=torch.float64) for _ in range(2))
    mask = None if is_causal else torch.rand(9, 9) > 0.3
    mask = mask if mask is None else mask | torch.eye(9, dtype=torch.bool)   # no empty row
    record = []
    slow = attend(q, k, v, scale=0.4, mask=mask, is_causal=is_causal, record=record)
    fast = attend(q, k, v, scale=0.4, mask=mask, is_causal=is_causal)
    torch.testing.assert_close(slow, fast)
    assert len(record) == 1 and record[0].shape == (2, 4, 9, 9)
    if is_causal:
        assert (record[0].triu(1) == 0).all()                      # no future key
