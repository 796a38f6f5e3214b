"""Explainer figures for the report (results/explainers/*.png, each with a CSV).

Always drawn (no training needed; fixed seeds, so reruns give identical numbers):
  sinusoidal_encoding     the 2017 paper's encoding matrix and a few of its channels
  attention_entropy_init  attention entropy at initialisation, scaled vs unscaled:
                          unit-variance q, k across d_k, and a freshly initialised
                          encoder's layers
Drawn from the best trained causal LM run that saved model.pt (skipped with a note
when none exists; never a placeholder):
  attention_heads_layerN  attention per head on the sample sentence
  attention_from_it       where the word "it" looks, every layer and head
  sampling                temperature / top-k / top-p on the model's real logits
"""
from __future__ import annotations

import math
from pathlib import Path

from .mpl import plt
import numpy as np
import pandas as pd
import torch

from transformer.registry import POSITIONAL

from .. import store
from .explainer_captions import CAPTIONS
from .plot_data import settle, write_figure

def sinusoidal_figure(out: Path, n_positions: int = 128, d_model: int = 128) -> str:
    from transformer.positional import sinusoidal_table
    pe = settle(sinusoidal_table(n_positions, d_model, dtype=torch.float64))
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    im = a.imshow(pe, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=a, label="encoding value")
    a.set_xlabel("embedding dimension (even: sin, odd: cos)")
    a.set_ylabel("position (tokens)")
    a.set_title(f"PE[p, 2i] = sin(p / 10000^(2i/d)), d = {d_model}")
    for j, dim in enumerate((0, 10, 30, 50)):
        b.plot(np.arange(n_positions), pe[:, dim] + 2.5 * j, color=f"C{j}",
               label=f"dim {dim}: wavelength {2 * math.pi * 10000 ** (dim / d_model):.0f}")
    b.set_yticks([])
    b.set_xlabel("position (tokens)")
    b.set_ylabel("encoding value (offset per channel)")
    b.set_title("low dims oscillate fast, high dims slowly")
    b.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.suptitle("Sinusoidal positional encoding: each position gets a unique pattern")
    table = pd.DataFrame(pe, columns=[f"dim{i}" for i in range(d_model)])
    table.insert(0, "position", range(n_positions))
    write_figure(out, "sinusoidal_encoding", fig, table)
    return "explainers: sinusoidal_encoding.png"


SCALES = {"sqrt": lambda d: d ** -0.5, "none": lambda d: 1.0, "dk": lambda d: 1.0 / d}


def _entropy_fraction(weights: torch.Tensor) -> torch.Tensor:
    """Mean row entropy / log(Tk) per head, from (B, H, Tq, Tk) -> (H,)."""
    p = weights.float().clamp_min(1e-12)
    return (-(p * p.log()).sum(-1)).mean(dim=(0, 2)) / math.log(weights.shape[-1])


def entropy_figure(out: Path, T: int = 64, seed: int = 0) -> str:
    from transformer import ModelConfig, build_model
    from transformer.inspect import record_attention
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for d_k in (4, 8, 16, 32, 64, 128, 256, 512):          # unit-variance q and k
        q, k = torch.randn(8, T, d_k, generator=gen), torch.randn(8, T, d_k, generator=gen)
        for scale, f in SCALES.items():
            w = ((q @ k.transpose(1, 2)) * f(d_k)).softmax(-1)[:, None]
            frac = float(settle(_entropy_fraction(w).item()))
            rows.append({"source": "unit-variance q, k", "scale": scale, "d_k": d_k,
                         "layer": -1, "entropy_fraction": frac})
    tokens = torch.randint(0, 256, (4, T), generator=gen)
    for d_k in (16, 64, 256):                              # a real model, fresh init
        for scale in ("sqrt", "none"):
            torch.manual_seed(seed)
            model = build_model(ModelConfig(arch="encoder", vocab_size=256, d_model=2 * d_k,
                                            n_heads=2, n_layers=4, d_ff=2 * d_k,
                                            attn_scale=scale, max_len=T)).eval()
            with torch.no_grad(), record_attention(model) as maps:
                model(tokens)
            for layer, w in enumerate(maps):
                rows.append({"source": "fresh encoder", "scale": scale, "d_k": d_k,
                             "layer": layer, "entropy_fraction":
                             float(settle(_entropy_fraction(w).mean().item()))})
    table = pd.DataFrame(rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    sim = table[table["source"] == "unit-variance q, k"]
    names = {"sqrt": "1/sqrt(d_k) (paper)", "none": "no scaling", "dk": "1/d_k"}
    for j, (scale, sub) in enumerate(sim.groupby("scale", sort=False)):
        a.plot(sub["d_k"], sub["entropy_fraction"], marker="o", color=f"C{j}",
               label=names[scale])
    a.set_xscale("log", base=2)
    a.set_xlabel("d_k (dimensions per head)")
    a.set_ylabel("attention entropy (fraction of log T)")
    a.set_title(f"softmax(q·k · scale) for unit-variance q, k, T = {T}")
    a.set_ylim(0, 1.05)
    model_rows = table[table["source"] == "fresh encoder"]
    for j, d_k in enumerate((16, 64, 256)):
        for scale, ls in (("sqrt", "-"), ("none", "--")):
            sub = model_rows[(model_rows["d_k"] == d_k) & (model_rows["scale"] == scale)]
            b.plot(sub["layer"], sub["entropy_fraction"], ls=ls, marker="o", color=f"C{j + 3}",
                   label=f"d_k={d_k}, {names[scale]}")
    b.set_xlabel("layer")
    b.set_xticks(range(4))
    b.set_ylabel("attention entropy (fraction of log T)")
    b.set_title("freshly initialised 4-layer encoder (2 heads, d_ff = d_model, seed 0)")
    b.set_ylim(0, 1.05)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Without 1/sqrt(d_k), dot products grow with d_k and softmax saturates "
                 "(entropy collapses)")
    write_figure(out, "attention_entropy_init", fig, table)
    return "explainers: attention_entropy_init.png"


def make_all(results: Path, problems: list[str] | None = None,
             dest: Path | None = None) -> list[str]:
    """Draw every explainer that the stored results allow into `dest`/explainers (default
    the results folder); returns notes to print. A damaged model.pt is appended to
    `problems` (stderr, exit 1), not a note."""
    out = Path(dest if dest is not None else results) / "explainers"
    for f in out.glob("*") if out.is_dir() else []:     # figures of a run now gone
        if f.suffix in (".png", ".csv") and f.name.startswith(tuple(CAPTIONS)):
            f.unlink()
    notes = [sinusoidal_figure(out), entropy_figure(out)]
    from .model_figures import attention_figures, find_lm_run, load_lm, sampling_figure
    rdir, cfg = find_lm_run(results)
    if rdir is None:
        return notes + ["explainers: no finished decoder LM run with model.pt under "
                        f"{results}; attention heatmaps and sampling figures skipped"]
    try:
        cache = store.cache_dir(results)          # where the grid runner caches corpora
        model, ids, toks, decode = load_lm(rdir, cfg, cache if cache.is_dir() else None)
        bounded = POSITIONAL.info(model.cfg.pos)["bounded"] and "pos" not in \
            model.cfg.ignored_fields()
        if bounded and len(ids) > model.cfg.max_len:
            raise LookupError(f"the sentence ({len(ids)} tokens) exceeds the {model.cfg.pos} "
                              "PE table")
    except store.Unreadable as e:
        if problems is None:
            raise
        problems.append(f"{e} (attention heatmaps and sampling figures not drawn)")
        return notes
    except Exception as e:        # e.g. a plugin variant that cannot be rebuilt
        return notes + [f"explainers: cannot use run {rdir.name} ({e}); attention heatmaps "
                        "and sampling figures skipped"]
    run = f"{store.grid_of(rdir)}/{rdir.name}"
    notes += attention_figures(out, model, ids, toks, run)
    notes.append(sampling_figure(out, model, ids, toks, decode))
    return notes
