"""Autoregressive generation: temperature, top-k and top-p sampling, with a KV cache
(or recurrent state) so that incremental decoding equals full recomputation.

A model supports generation by providing three methods:
  init_state(prompt, max_len, src) -> state   caches sized for max_len positions
  decode(tokens, state) -> logits (B, T, V)   feed new tokens, advance the state
  full_logits(tokens, src) -> logits          recompute the whole sequence
`src` (B, S) is the encoder input of an encoder-decoder, None for the others; an arch
that cannot decode incrementally raises ValueError from init_state.
"""
from __future__ import annotations

import torch

from .registry import READOUT


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Logits (B, V) -> logits with the tokens that may not be sampled set to -inf."""
    logits = logits.float() / max(temperature, 1e-8)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p             # keep the first token past p
        drop = torch.zeros_like(drop).scatter(-1, order, drop)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Logits (B, V) -> next tokens (B, 1). temperature 0 or top_k 1 is greedy."""
    if temperature == 0 or top_k == 1:
        return logits.argmax(dim=-1, keepdim=True)
    probs = filter_logits(logits, temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


class Generation:
    """Mixin: `generate` for a model with init_state, decode and full_logits."""

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, src: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """prompt (B, T0) -> (B, T0 + max_new_tokens): the prompt followed by new tokens."""
        if not READOUT.info(self.cfg.readout)["generates"]:
            raise ValueError(f"readout={self.cfg.readout!r} reads the whole sequence: a "
                             "model with it classifies, it does not generate")
        was_training = self.training
        self.eval()
        B, T0 = prompt.shape
        out = torch.empty(B, T0 + max_new_tokens, dtype=prompt.dtype, device=prompt.device)
        out[:, :T0] = prompt
        if use_cache:
            state = self.init_state(prompt, T0 + max_new_tokens, src)
            logits = self.decode(prompt, state)[:, -1]
        else:
            logits = self.full_logits(prompt, src)[:, -1]
        for i in range(T0, T0 + max_new_tokens):
            out[:, i:i + 1] = sample_next(logits, temperature, top_k, top_p, generator)
            if i + 1 == out.shape[1]:
                break
            if use_cache:
                logits = self.decode(out[:, i:i + 1], state)[:, -1]
            else:
                logits = self.full_logits(out[:, :i + 1], src)[:, -1]
        self.train(was_training)
        return out
