"""The fused output-projection + cross-entropy loss (transformer/loss.py) against
F.cross_entropy of the full logits."""
import pytest
import torch
import torch.nn.functional as F

from transformer import ModelConfig, build_model
from transformer import loss as fused


@pytest.mark.parametrize("arch,tied", [("decoder", False), ("decoder", True), ("lstm", False),
                                       ("encoder_decoder", False)])
def test_fused_loss_equals_cross_entropy_of_the_logits(arch, tied, monkeypatch):
    """model.loss (projection fused into the loss, the path `ablate train` uses) gives
    F.cross_entropy(model(...)) and its gradients, across several chunks and with
    ignored positions."""
    monkeypatch.setattr(fused, "MAX_CHUNK_ELEMENTS", 3 * 50)      # 3 rows a chunk
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, vocab_size=50, d_model=16, n_heads=2,
                                    tie_embeddings=tied)).double()
    x = torch.randint(0, 50, (3, 7))
    target = torch.randint(0, 50, (3, 7))
    target[0, :4] = -100
    inputs = (x, x) if arch == "encoder_decoder" else (x,)
    want = F.cross_entropy(model(*inputs).flatten(0, 1), target.flatten(), ignore_index=-100)
    want_grads = torch.autograd.grad(want, list(model.parameters()), allow_unused=True)
    got = model.loss(*inputs, target=target)
    grads = torch.autograd.grad(got, list(model.parameters()), allow_unused=True)
    assert torch.allclose(got, want, atol=1e-12)
    for g, w in zip(grads, want_grads):
        assert (g is None) == (w is None)
        if g is not None:
            assert torch.allclose(g, w, atol=1e-12)


def test_fused_loss_falls_back_without_grad_and_under_autocast():
    torch.manual_seed(0)
    h, w = torch.randn(10, 8), torch.randn(20, 8)
    t = torch.randint(0, 20, (10,))
    want = F.cross_entropy(h @ w.t(), t)
    with torch.no_grad():
        assert torch.allclose(fused.linear_cross_entropy(h, w, t), want, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fused.linear_cross_entropy(h, w, t)
    assert got.dtype == torch.float32 and abs(got.item() - want.item()) < 0.05
