"""One model on one prompt: what the page shows of it.

The view is the project's own forward pass, recorded: the logits at every position
(the page applies temperature, top-k and top-p to them as transformer.generate does)
and, for every attention call, the three stages the Transformer Explainer draws --
q k^T times the scale, the same after the mask and positional bias, and the softmax --
with each head's entropy. Attention calls are grouped into stacks (self-attention of a
decoder or encoder, an encoder-decoder's encoder, decoder and cross-attention).
"""
from __future__ import annotations

import torch

from transformer.attention import Attention
from transformer.inspect import entropy_fraction, record_attention, row_entropy

from . import pack
from .tokens import Inputs, Prompter


def stack_of(name: str, layer: Attention) -> str:
    if layer.cross:
        return "cross-attention"
    top = name.split(".", 1)[0]
    return {"encoder": "encoder self-attention",
            "decoder": "decoder self-attention"}.get(top, "self-attention")


def view(model, prompter: Prompter, text: str) -> dict:
    """{tokens, src, position, logits, stacks}: everything the page draws for one variant."""
    inputs = prompter.inputs(text)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, Attention)]
    with torch.no_grad(), record_attention(model, stages=True) as maps:
        logits = model(*inputs.args)[0]                                   # (T, V)
    if len(maps) != len(layers):          # one call per attention module, module order
        raise RuntimeError(f"expected {len(layers)} attention maps, recorded {len(maps)}")
    stacks: dict[str, dict] = {}
    for (name, layer), w, n_keys, stage in zip(layers, maps, maps.n_keys, maps.stages):
        key = stack_of(name, layer)
        if key not in stacks:
            stacks[key] = _stack(key, inputs, stage)
        stacks[key]["layers"].append({
            "scaled": pack.q16(stage["scaled"][0].double()),
            "weights": pack.u16(w[0].double().clamp(0, 1)),
            "entropy": [round(float(e), 5) for e in row_entropy(w)[0].mean(-1)],
            "entropy_frac": [round(float(e), 5)
                             for e in entropy_fraction(w, n_keys)[0].mean(-1)]})
    return {"tokens": inputs.stream, "src": inputs.src, "position": inputs.position,
            "align": inputs.align,
            "logits": pack.f32(logits.float()), "stacks": list(stacks.values())}


def _stack(key: str, inputs: Inputs, stage: dict) -> dict:
    """A stack's queries, keys and mask: the mask and positional bias are built once per
    forward pass and shared by its layers, so the first layer's stages give them."""
    scaled, masked = stage["scaled"][0].double(), stage["masked"][0].double()
    blocked = torch.isinf(masked)
    Tq, Tk = masked.shape[-2:]
    causal = bool(blocked.any())
    if causal and not torch.equal(blocked, torch.ones(Tq, Tk, dtype=torch.bool)
                                  .triu(1).expand_as(blocked)):
        raise RuntimeError(f"{key}: a mask other than the causal one; the page draws only that")
    bias = torch.where(blocked, torch.zeros_like(masked), masked - scaled)
    src = inputs.src if inputs.src is not None else inputs.stream
    keys = {"encoder self-attention": src, "cross-attention": src}.get(key, inputs.stream)
    queries = src if key == "encoder self-attention" else inputs.stream
    return {"name": key, "queries": queries, "keys": keys, "causal": causal,
            "bias": pack.q16(bias) if bias.abs().max() > 1e-6 else None, "layers": []}
