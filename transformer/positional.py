"""Positional encodings. One instance is built per stack and shared by its layers.

Positions are absolute: a sequence of length T starting at `start` holds positions
start .. start+T-1, so incremental decoding with a KV cache sees exactly the
positions a full forward pass would. They are plain ints: no host-device syncs.
"""
from __future__ import annotations

import math
import torch
from torch import nn

from .config import ModelConfig
from .validation import ConfigError
from .registry import POSITIONAL


class PositionalEncoding(nn.Module):
    """Base of the `pos` variants. Built as Cls(cfg), where cfg.causal is the causal
    flag of the stack it serves (an encoder-decoder's encoder is never causal).

    An encoding uses up to three hooks; here all three are no-ops, so the blocks never
    branch on which encoding is in use:
      embed(x, start) -> x                  add to the token embeddings (absolute schemes)
      rotate(q, k, q_start, k_start) -> q, k  rotate queries and keys, (B, H, T, hd) (RoPE)
      bias(Tq, Tk, q_start, k_start) -> (H, Tq, Tk) additive logit bias, or None (ALiBi, T5)
    Hooks must be exact at any start: decoding with a KV cache calls them with
    start > 0 and must give what a full pass gives at those positions. Optional class
    attributes: `ignores`, `check_config(cfg)` and `bounded` (see registry.py).
    """

    bounded = False       # True: a table of cfg.max_len positions, and no position past it

    def __init__(self, cfg: ModelConfig):
        super().__init__()

    def embed(self, x: torch.Tensor, start: int) -> torch.Tensor:
        return x                                                  # x: (B, T, D)

    def rotate(self, q: torch.Tensor, k: torch.Tensor, q_start: int,
               k_start: int) -> tuple[torch.Tensor, torch.Tensor]:
        return q, k                                               # (B, H, T, hd)

    def bias(self, Tq: int, Tk: int, q_start: int, k_start: int) -> torch.Tensor | None:
        return None


def positions(start: int, n: int, device: torch.device | str) -> torch.Tensor:
    return torch.arange(start, start + n, device=device)


@POSITIONAL.register("none")
class NoPE(PositionalEncoding):
    """No position information: self-attention is a bag of words."""


@POSITIONAL.register("integer")
class IntegerPE(PositionalEncoding):
    """The naive negative control: raw index times a fixed zero-mean +-1 vector.

    Its magnitude grows without bound with position. A constant added to every
    channel would be erased by LayerNorm's mean subtraction, hence the +-1 pattern.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        sign = torch.ones(cfg.d_model)
        sign[1::2] = -1.0
        self.register_buffer("direction", sign, persistent=False)

    def embed(self, x: torch.Tensor, start: int) -> torch.Tensor:
        pos = positions(start, x.shape[1], x.device).to(x.dtype)
        return x + pos[:, None] * self.direction                         # (T, D) broadcast


def sinusoidal_table(n_positions: int, d_model: int,
                     positions: torch.Tensor | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 2017 paper's encoding: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...).
    (float64 for a figure: float32 sin differs in the last bits between CPUs.)"""
    if positions is None:
        positions = torch.arange(n_positions)
    inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=dtype)
                         * (-math.log(10000.0) / d_model))
    angles = positions.to(dtype)[:, None] * inv_freq                    # (T, D/2)
    table = torch.zeros(len(positions), d_model, dtype=dtype)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table


@POSITIONAL.register("sinusoidal")
class SinusoidalPE(PositionalEncoding):
    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.d_model = cfg.d_model
        self.register_buffer("table", sinusoidal_table(cfg.max_len, cfg.d_model), persistent=False)

    def embed(self, x: torch.Tensor, start: int) -> torch.Tensor:
        end = start + x.shape[1]
        if end > len(self.table):               # beyond the precomputed table: extend it
            self.table = sinusoidal_table(2 * end, self.d_model).to(self.table)
        return x + self.table[start:end].to(x.dtype)


@POSITIONAL.register("learned")
class LearnedPE(PositionalEncoding):
    """A trained vector per position (GPT-2, BERT): no vector past max_len."""

    bounded = True

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.max_len = cfg.max_len
        self.table = nn.Embedding(cfg.max_len, cfg.d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def embed(self, x: torch.Tensor, start: int) -> torch.Tensor:
        end = start + x.shape[1]
        if end > self.max_len:                   # no silent clamping: there is no vector for it
            raise ValueError(f"learned positional encoding has max_len={self.max_len} "
                             f"positions; got position {end - 1}")
        return x + self.table.weight[start:end]


@POSITIONAL.register("rope")
class RoPE(PositionalEncoding):
    """Rotary embedding (Su et al.): rotate channel pairs of q and k by position-dependent
    angles so that q.k depends only on the relative offset."""

    base = 10000.0

    @staticmethod
    def check_config(cfg: ModelConfig) -> None:
        if cfg.head_dim % 2:
            size = (f"d_head = {cfg.d_head}" if cfg.d_head is not None else
                    f"d_model/n_heads = {cfg.d_model}/{cfg.n_heads} = {cfg.head_dim}")
            raise ConfigError("pos", f"rope needs an even head dim; {size}")

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        hd = cfg.head_dim
        self.register_buffer("inv_freq", self.base ** (-torch.arange(0, hd, 2).float() / hd),
                             persistent=False)
        self._cache: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def _cos_sin(self, n: int, device, dtype):
        if self._cache is None or self._cache[0] < n or self._cache[1].device != device:
            n = max(n, 2 * (self._cache[0] if self._cache else 0))
            angles = torch.arange(n, device=device).float()[:, None] * self.inv_freq.to(device)
            self._cache = (n, angles.cos(), angles.sin())                # (n, hd/2)
        _, cos, sin = self._cache
        return cos.to(dtype), sin.to(dtype)

    def _spin(self, x, cos, sin):
        # x: (B, H, T, hd); rotate the halves [x1, x2] -> [x1 cos - x2 sin, x1 sin + x2 cos]
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

    def rotate(self, q: torch.Tensor, k: torch.Tensor, q_start: int,
               k_start: int) -> tuple[torch.Tensor, torch.Tensor]:
        Tq, Tk = q.shape[-2], k.shape[-2]
        cos, sin = self._cos_sin(max(q_start + Tq, k_start + Tk), q.device, q.dtype)
        q = self._spin(q, cos[q_start:q_start + Tq], sin[q_start:q_start + Tq])
        k = self._spin(k, cos[k_start:k_start + Tk], sin[k_start:k_start + Tk])
        return q, k


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Press et al.: a geometric sequence starting at 2^(-8/n); for n not a power of two,
    the closest power of two's slopes plus every other slope of the next one."""
    def power_of_2(n):
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]
    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_2(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    extra = power_of_2(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(power_of_2(closest) + extra)


@POSITIONAL.register("alibi")
class ALiBi(PositionalEncoding):
    """Linear distance penalty per head. Bidirectional use takes |i - j|, which is
    symmetric: an encoder cannot tell a sequence from its reverse."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)

    def bias(self, Tq: int, Tk: int, q_start: int, k_start: int) -> torch.Tensor:
        dev = self.slopes.device
        dist = (positions(q_start, Tq, dev)[:, None]
                - positions(k_start, Tk, dev)[None, :]).abs().to(self.slopes.dtype)  # (Tq, Tk)
        return -self.slopes[:, None, None] * dist                             # (H, Tq, Tk)


@POSITIONAL.register("t5")
class T5Bias(PositionalEncoding):
    """T5's learned relative bias: one scalar per head per log-spaced distance bucket.
    Distances past `max_distance` (cfg.t5_max_distance, T5's 128 by default) share the
    last bucket: buckets for distances never seen in training stay at their zero init,
    so a max_distance past the training length leaves untrained buckets for longer
    evaluations to land in."""

    n_buckets = 32

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.max_distance = cfg.t5_distance
        self.bidirectional = not cfg.causal or cfg.prefix_len > 1   # a prefix looks ahead
        self.table = nn.Embedding(self.n_buckets, cfg.n_heads)
        nn.init.zeros_(self.table.weight)

    def _bucket(self, rel):                         # rel = k - q
        n = self.n_buckets
        out = torch.zeros_like(rel)
        if self.bidirectional:
            n //= 2
            out += (rel > 0).long() * n
            rel = rel.abs()
        else:
            rel = (-rel).clamp(min=0)
        exact = n // 2
        log_bucket = exact + (torch.log(rel.float().clamp(min=1) / exact)
                              / math.log(self.max_distance / exact) * (n - exact)).long()
        return out + torch.where(rel < exact, rel, log_bucket.clamp(max=n - 1))

    def bias(self, Tq: int, Tk: int, q_start: int, k_start: int) -> torch.Tensor:
        dev = self.table.weight.device
        rel = positions(k_start, Tk, dev)[None, :] - positions(q_start, Tq, dev)[:, None]
        buckets = self._bucket(rel)                                           # (Tq, Tk)
        return self.table(buckets).permute(2, 0, 1)                           # (H, Tq, Tk)
