"""Where the decoder reads the source: a cross-attention heatmap of an encoder_decoder.

`cross_attention_figure(model, task, out_png)` runs one fixed validation sentence of
the task through the model, records every attention call (transformer.inspect), keeps
the cross-attention ones (queries from the decoder, keys/values from the encoder
output) and draws, per decoder layer, the weights averaged over heads: decoder position
(the query that predicts target word j) against source position. For a task that
reorders (translate: chunks, verb_final, reverse) the cells where target word j's
source word sits are outlined, so a trained model's alignment shows the reordering.
The plotted numbers go to a CSV beside the PNG.
"""
from __future__ import annotations

from pathlib import Path

from .mpl import plt
import numpy as np
import pandas as pd
import torch


def alignment(task, length: int) -> np.ndarray | None:
    """Source position each target position copies from, if the task defines one:
    translate's `order`, copy's identity, reverse's flip."""
    order = getattr(task, "order", None)
    if order is not None:
        return np.asarray(order)
    if hasattr(task, "reverse"):                      # Copy / Reverse
        idx = np.arange(length)
        return idx[::-1].copy() if task.reverse else idx
    return None


def cross_maps(model, src: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
    """Cross-attention weights (B, H, T, S), one per decoder layer, in layer order."""
    from transformer.attention import Attention
    from transformer.inspect import record_attention
    layers = [m for m in model.modules() if isinstance(m, Attention)]
    if not any(m.cross for m in layers):
        raise ValueError("the model has no cross-attention (arch "
                         f"{model.cfg.arch!r}, cross_attention={model.cfg.cross_attention})")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), record_attention(model) as maps:
            model(src, tgt_in)
    finally:
        model.train(was_training)
    if len(maps) != len(layers):          # one call per attention module, module order
        raise RuntimeError(f"expected {len(layers)} attention maps, recorded {len(maps)}")
    return [w for w, m in zip(maps, layers) if m.cross]


def load_run(run_dir: Path):
    """(model, task) of a finished run from its model.pt and config; FileNotFoundError
    when the run kept no weights."""
    from .. import store
    from ..tasks import task_of
    cfg, model = store.read_model(run_dir)
    task = task_of(cfg, store.cache_dir(store.results_of(run_dir)))
    return model, task


def cross_attention_figure(model, task, out_png, example: int = 0) -> list[float]:
    """Draw the cross-attention heatmap of one validation example into out_png, with
    the plotted numbers in out_png's .csv; returns, per decoder layer, the mean
    head-averaged weight on the aligned source word (NaN when the task defines none)."""
    out_png = Path(out_png)
    table, fig = cross_attention_plot(model, task, example)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_png.with_suffix(".csv"), index=False)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)
    aligned = table[table["aligned"]].groupby("layer")["weight"].mean()
    return [float(aligned.get(layer, float("nan"))) for layer in sorted(table["layer"].unique())]


def cross_attention_plot(model, task, example: int = 0):
    """(table, figure) of the cross-attention heatmap of one validation example."""
    batch = task.make_batch(task.generator("val", 0), example + 1, "val")
    if "src" not in batch:
        raise ValueError(f"task {task.params.name!r} gives no source for arch {task.arch!r}; "
                         "build it with arch='encoder_decoder'")
    device = next(model.parameters()).device
    src = batch["src"][example:example + 1].to(device)
    tgt_in = batch["input"][example:example + 1].to(device)
    target = batch["target"][example].tolist()
    # rounded: CPUs differ in the last bits, a regenerated figure must not
    maps = [np.round(w[0].float().mean(0).cpu().numpy().astype(np.float64), 5)
            for w in cross_maps(model, src, tgt_in)]
    S, T = src.shape[1], tgt_in.shape[1]
    align = alignment(task, S)
    if align is not None and len(align) != T:
        align = None
    src_tok, n_src = src[0].tolist(), getattr(task.params, "n_words", None)
    src_labels = [f"{i}: {t}" for i, t in enumerate(src_tok)]
    # target ids are n_words + lexicon index in translate; print them as they are
    tgt_labels = [f"{j}: {t}" + (f" (src {align[j]})" if align is not None else "")
                  for j, t in enumerate(target)]

    n = len(maps)
    size = max(3.2, 0.32 * max(S, T) + 1.5)
    fig, axes = plt.subplots(1, n, figsize=(size * n + 1.2, size + 0.8), squeeze=False,
                             layout="constrained")
    aligned, rows = [], []
    for layer, (ax, m) in enumerate(zip(axes[0], maps)):
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1, aspect="equal",
                       interpolation="nearest")
        if align is not None:
            ax.scatter(align, np.arange(T), s=90, marker="s", facecolors="none",
                       edgecolors="red", linewidths=1.2, label="aligned source word")
            aligned.append(float(m[np.arange(T), align].mean()))
            ax.set_title(f"decoder layer {layer}\nmean weight on the aligned word: "
                         f"{aligned[-1]:.2f}", fontsize=9)
        else:
            aligned.append(float("nan"))
            ax.set_title(f"decoder layer {layer}", fontsize=9)
        ax.set_xticks(range(S), src_labels, rotation=90, fontsize=7)
        ax.set_yticks(range(T), tgt_labels if layer == 0 else [""] * T, fontsize=7)
        ax.set_xlabel("source position: word\n(keys/values: encoder output)", fontsize=8)
        if layer == 0:
            ax.set_ylabel("decoder position: target word it predicts\n(queries)", fontsize=8)
        for j in range(T):
            for i in range(S):
                rows.append({"layer": layer, "decoder_pos": j, "source_pos": i,
                             "weight": float(m[j, i]), "target_token": target[j],
                             "source_token": src_tok[i],
                             "aligned": bool(align is not None and align[j] == i)})
    if align is not None:
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7,
                           frameon=False)
    fig.colorbar(im, ax=axes[0].tolist(), label="attention weight (mean over heads)",
                 shrink=0.8)
    what = getattr(task.params, "reorder", None)
    fig.suptitle(f"Cross-attention, mean over heads: {task.params.name}"
                 + (f" (reorder: {what})" if what else "") + ", one validation example"
                 + (f"\nsource words 0..{n_src - 1}, target words {n_src}..{2 * n_src - 1}"
                    if n_src else ""), fontsize=10)
    return pd.DataFrame(rows), fig
