"""The contenders: our decoder, and the same GPT at an identical configuration built with
x-transformers and with Hugging Face GPT-2. Peers come from the `bench` extra
(`pip install -e .[bench]`); a missing one is skipped with a note.

Every builder returns (model, step): `step()` runs one training step (forward,
backward, AdamW) on a fixed batch, so contenders differ only in their model code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from transformer import ModelConfig, build_model


@dataclass(frozen=True)
class GPTShape:
    vocab: int = 4096
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    seq: int = 256
    batch: int = 16

    @property
    def tokens(self) -> int:                 # tokens per training step
        return self.batch * self.seq


class PeerMissing(Exception):
    """A peer library is not installed: the benchmark skips it with this note."""


def our_config(s: GPTShape) -> ModelConfig:
    return ModelConfig(arch="decoder", vocab_size=s.vocab, d_model=s.d_model,
                       n_layers=s.n_layers, n_heads=s.n_heads, pos="learned", norm="layernorm",
                       norm_placement="pre", ffn="gelu", dropout=0.0, max_len=s.seq)


def ours(s: GPTShape) -> torch.nn.Module:
    return build_model(our_config(s))


def x_transformers(s: GPTShape) -> torch.nn.Module:
    try:
        from x_transformers import Decoder, TransformerWrapper
    except ImportError as e:
        raise PeerMissing("x-transformers not installed (pip install -e .[bench])") from e
    # defaults already are: pre-LN LayerNorm, GELU FFN x4, learned absolute positions,
    # untied head, no dropout; attn_flash=True routes attention through SDPA as ours does
    return TransformerWrapper(num_tokens=s.vocab, max_seq_len=s.seq, attn_layers=Decoder(
        dim=s.d_model, depth=s.n_layers, heads=s.n_heads, attn_dim_head=s.d_model // s.n_heads,
        attn_flash=True))


class _LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens):
        return self.model(input_ids=tokens, use_cache=False).logits


def hf_gpt2(s: GPTShape) -> torch.nn.Module:
    try:
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        raise PeerMissing("transformers not installed (pip install -e .[bench])") from e
    transformers.logging.set_verbosity_error()
    cfg = GPT2Config(vocab_size=s.vocab, n_positions=s.seq, n_embd=s.d_model, n_layer=s.n_layers,
                     n_head=s.n_heads, activation_function="gelu",   # exact GELU, as ours
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "sdpa"              # torch's SDPA, as ours and x-transformers
    return _LogitsOnly(GPT2LMHeadModel(cfg))


PEERS: dict[str, Callable[[GPTShape], torch.nn.Module]] = {
    "x-transformers": x_transformers, "hf-gpt2": hf_gpt2}


def train_step(model: torch.nn.Module, batch: torch.Tensor, fused_loss: bool,
               fused_adamw: bool = True) -> Callable[[], torch.Tensor]:
    """One AdamW training step on `batch` (B, T+1): predict tokens 1.. from 0..T-1.

    fused_loss: our model's `loss` (projection fused into cross-entropy); otherwise
    logits then F.cross_entropy, which is what a peer's user writes.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused_adamw,
                            foreach=False if fused_adamw else None)
    inputs, target = batch[:, :-1], batch[:, 1:]

    def step():
        if fused_loss:
            loss = model.loss(inputs, target=target)
        else:
            logits = model(inputs)
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return step


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
