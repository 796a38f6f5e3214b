"""Evaluation and diagnostics: plain functions of a `build_model` network and batches,
with no Lightning in them, so they can be called (and tested) on a bare model.

Mixed-precision autocast, where a run uses it, is the caller's to apply around
`evaluate` (the training module wraps it in Lightning's precision context).
"""
from __future__ import annotations

import torch
from torch import nn

from transformer.attention import Attention
from transformer.inspect import entropy_fraction, record_attention, row_entropy
from transformer.model import SequenceModel

Batch = dict[str, torch.Tensor]


@torch.no_grad()
def score(model: SequenceModel, task, val_sets: dict[str, list[Batch]],
             prefix: str = "val") -> dict[str, float]:
    """Mean of each task metric over every val set: val_<m> and val_<m>@<L> for the set
    keyed '@<L>' ('' is the main set), val_<m>@<L>_<band> for a task's band metric
    `<m>@<band>` (Task.bands); `prefix` 'test' names the test split's. A set the
    model cannot run (e.g. a learned PE asked past its table) gives val_error@<L> with
    the message instead. `model` may be
    compiled; it runs in eval mode and gets its mode back."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for suffix, batches in val_sets.items():
        sums: dict[str, float] = {}
        try:
            for batch in batches:
                for k, v in task.metrics(model(*model.inputs(batch)), batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
        except ValueError as e:
            out[f"{prefix}_error{suffix}"] = str(e)
            continue
        for k, v in sums.items():
            name, _, band = k.partition("@")           # a band of the set: <m>@<band>
            out[f"{prefix}_{name}{suffix}" + (f"_{band}" if band else "")] = v / len(batches)
    model.train(was_training)
    return out


@torch.no_grad()
def attention_diagnostics(model: SequenceModel, batch: Batch) -> dict[str, float]:
    """Attention entropy per attention layer on one batch, in nats and as a fraction of
    the uniform distribution's (1.0 = uniform, 0 = one-hot: saturated), plus the mean
    fraction over layers, and the logit scale relative to 1/sqrt(d_k) (attn_scale_rel).
    Empty for a model without attention. `model` must be the
    uncompiled network: recording runs the explicit attention path."""
    was_training = model.training
    model.eval()
    with record_attention(model) as maps:
        model(*model.inputs(batch))
    model.train(was_training)
    out = {}
    for i, (w, n_keys) in enumerate(zip(maps, maps.n_keys)):      # w: (B, H, Tq, Tk)
        out[f"attn_entropy/layer{i}"] = row_entropy(w).mean().item()
        out[f"attn_entropy_frac/layer{i}"] = entropy_fraction(w, n_keys).mean().item()
    if maps:
        out["attn_entropy_frac"] = sum(out[f"attn_entropy_frac/layer{i}"]
                                       for i in range(len(maps))) / len(maps)
        # the logit scale in units of the paper's 1/sqrt(d_k): 1 for sqrt, sqrt(d_k)
        # unscaled, 1/sqrt(d_k) for 1/d_k, and where a learned temperature went
        layers = [m for m in model.modules() if isinstance(m, Attention)]
        out["attn_scale_rel"] = sum(float(m.scale.effective().mean()) * m.head_dim ** 0.5
                                    for m in layers) / len(layers)
    return out


def grad_norm(module: nn.Module) -> float | None:
    """L2 norm of all of a module's gradients together; None when it has none."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return None
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])
    return torch.linalg.vector_norm(norms).item()


def grad_norms(model: SequenceModel, per_layer: bool = True) -> dict[str, float]:
    """grad_norm of the whole model, and with per_layer of each of model.blocks() as
    grad_norm/layer<i> and of every attention layer's query and key projections
    together as grad_norm_qk; entries without gradients are left out."""
    norms = {}
    if per_layer:
        for i, block in enumerate(model.blocks()):
            norms[f"grad_norm/layer{i}"] = grad_norm(block)
        qk = [g for m in model.modules() if isinstance(m, Attention) for g in m.qk_grads()]
        if qk:
            norms["grad_norm_qk"] = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in qk])).item()
    norms["grad_norm"] = grad_norm(model)
    return {k: v for k, v in norms.items() if v is not None}
