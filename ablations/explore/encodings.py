"""What a variant's positional encoding is, read off the trained model itself.

  none, integer, sinusoidal, learned  the (position x channel) matrix added to the
                                      embeddings (all zero for none: nothing is added)
  rope                                the rotation angle of each channel pair at each
                                      position, modulo 2 pi
  alibi, t5                           the logit bias each head adds, against the offset
                                      key - query (the causal half for a causal stack)
"""
from __future__ import annotations

import math

import torch

from . import pack

TEXT = {
    "none": "No positional encoding: nothing is added, attention sees a bag of tokens "
            "(a causal mask still leaks position).",
    "integer": "The naive control: position p times a fixed +-1 pattern, growing without "
               "bound.",
    "sinusoidal": "Vaswani et al.: sin and cos of p / 10000^(2i/d), added to the embeddings.",
    "learned": "A learned vector per position (this run's trained table).",
    "rope": "RoPE: each query/key channel pair is rotated by p x its frequency, so q.k "
            "depends only on the offset.",
    "alibi": "ALiBi: each head subtracts slope x distance from the logits.",
    "t5": "T5: a learned bias per head for each log-spaced distance bucket (trained values).",
}


def encoding(model, rows: int = 128) -> dict:
    """{kind, text, ...} for the model's (first) stack; `rows` caps the positions shown."""
    cfg = model.cfg
    stack = getattr(model, "stack", None) or getattr(model, "encoder", None)
    kind = cfg.pos
    out = {"kind": kind, "text": TEXT.get(kind, kind)}
    if stack is None:                               # a recurrent arch: no encoding
        return {"kind": "none", "text": f"{cfg.arch}: order comes from the recurrence"}
    pos, P = stack.pos, min(cfg.max_len, rows)
    with torch.no_grad():
        if kind in ("none", "integer", "sinusoidal", "learned"):
            matrix = pos.embed(torch.zeros(1, P, cfg.d_model), 0)[0]
            out.update(matrix=pack.q16(matrix.double()), xlabel="channel", ylabel="position")
        elif kind == "rope":
            angles = torch.arange(P).double()[:, None] * pos.inv_freq.double()
            out.update(angles=pack.q16(torch.remainder(angles, 2 * math.pi)),
                       wavelengths=[round(2 * math.pi / float(f), 2) for f in pos.inv_freq],
                       xlabel="channel pair", ylabel="position")
        elif kind in ("alibi", "t5"):
            bias = pos.bias(1, 2 * P - 1, P - 1, 0)[:, 0, :].double()     # (H, 2P-1)
            offsets = list(range(-(P - 1), P))
            if stack.causal:                         # keys after the query are masked
                bias, offsets = bias[:, :P], offsets[:P]
            out.update(bias=pack.q16(bias), offsets=offsets, xlabel="offset key - query")
    return out
