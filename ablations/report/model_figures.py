"""Explainer figures drawn from a trained causal LM: attention per head on a sample
sentence, where "it" looks, and what temperature, top-k and top-p do to its logits."""
from __future__ import annotations

import math
from pathlib import Path

from .mpl import plt
import numpy as np
import pandas as pd
import torch

from .. import store
from .explainer_captions import SENTENCE
from .plot_data import settle, write_figure


def find_lm_run(results: Path):
    """The finished causal LM run (char preferred) with model.pt and the lowest val_loss."""
    best = None
    for rdir in store.all_runs(results):
        if not (rdir / store.MODEL).is_file():
            continue
        try:
            res = store.read_result(rdir)
        except (FileNotFoundError, store.Unreadable):
            continue
        cfg = res.get("config") or {}
        task, model = cfg.get("task") or {}, cfg.get("model") or {}
        if res.get("status") != "ok" or task.get("name") != "lm" \
                or model.get("arch") != "decoder" or model.get("causal") is False:
            continue
        loss = (res.get("metrics") or {}).get("val_loss")
        if loss is None or not math.isfinite(loss):
            continue
        key = (task.get("tokenizer", "char") != "char", loss)
        if best is None or key < best[0]:
            best = (key, rdir, cfg)
    return (best[1], best[2]) if best else (None, None)


def load_lm(rdir: Path, cfg: dict, cache_dir: Path | None = None):
    from ..tasks.corpus import load_corpus
    _, model = store.read_model(rdir)
    task = cfg["task"]
    corpus = load_corpus(task.get("source", "python-docs"), task.get("tokenizer", "char"),
                         task.get("vocab_size", 0), cache_dir)
    if isinstance(corpus.decoder, str):
        stoi = {c: i for i, c in enumerate(corpus.decoder)}
        missing = sorted(set(SENTENCE) - set(stoi))
        if missing:
            raise LookupError(f"characters {missing} are not in the run's vocabulary")
        ids = [stoi[c] for c in SENTENCE]
    else:
        ids = corpus.decoder.encode(SENTENCE).ids
    # float64: the figures' numbers then do not move with a CPU's float32 rounding
    return model.double().eval(), ids, [corpus.decode([i]) for i in ids], corpus.decode


def attention_figures(out: Path, model, ids, toks, run: str) -> list[str]:
    from transformer.inspect import record_attention
    with torch.no_grad(), record_attention(model) as maps:
        model(torch.tensor([ids]))
    shown = [t.replace(" ", "␣") for t in toks]
    notes, rows = [], []
    for layer, w in enumerate(maps):
        H = w.shape[1]
        cols = min(H, 4)
        fig, axes = plt.subplots(math.ceil(H / cols), cols, squeeze=False, sharey=True,
                                 figsize=(4.2 * cols, 4.2 * math.ceil(H / cols)),
                                 layout="constrained")
        for h in range(H):
            ax = axes.flat[h]
            m = settle(w[0, h])
            im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1, aspect="equal")
            ax.set_xticks(range(len(shown)), shown, fontsize=4.5)
            if h % cols == 0:
                ax.set_yticks(range(len(shown)), shown, fontsize=4.5)
                ax.set_ylabel("query character", fontsize=7)
            ax.set_title(f"head {h}", fontsize=9)
            ax.set_xlabel("key (attended-to character)", fontsize=7)
            q, k = np.meshgrid(range(m.shape[0]), range(m.shape[1]), indexing="ij")
            rows += [{"layer": layer, "head": h, "query_pos": a, "key_pos": b,
                      "query": toks[a], "key": toks[b], "weight": float(m[a, b])}
                     for a, b in zip(q.ravel(), k.ravel())]
        for ax in list(axes.flat)[H:]:
            ax.axis("off")
        fig.colorbar(im, ax=axes, label="attention weight", shrink=0.8)
        fig.suptitle(f"Layer {layer} attention per head on \"{SENTENCE}\"\n(run {run}; rows: "
                     "queries, columns: keys, causal mask hides the future)", fontsize=10)
        table = pd.DataFrame([r for r in rows if r["layer"] == layer])
        write_figure(out, f"attention_heads_layer{layer}", fig, table, tight=False)
        notes.append(f"explainers: attention_heads_layer{layer}.png")
    q = SENTENCE.index(" it ") + 2                       # the "t" that ends "it"
    q = min(q, len(ids) - 1) if len(ids) == len(SENTENCE) else len(ids) - 1
    stack = settle(np.stack([w[0, h, q, :q + 1].numpy() for w in maps
                             for h in range(w.shape[1])]))
    labels = [f"L{layer} H{h}" for layer, w in enumerate(maps) for h in range(w.shape[1])]
    fig, ax = plt.subplots(figsize=(12, 0.35 * len(labels) + 1.8))
    im = ax.imshow(stack, cmap="magma", aspect="auto", vmin=0)
    fig.colorbar(im, ax=ax, label="attention weight")
    ax.set_xticks(range(q + 1), shown[:q + 1], fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("key (character the query may attend to)")
    ax.set_ylabel("layer / head")
    ax.set_title("Where \"it\" looks: attention from the last character of \"it\"")
    table = pd.DataFrame(stack, index=labels, columns=[f"{i}:{t}" for i, t in
                                                       enumerate(toks[:q + 1])])
    write_figure(out, "attention_from_it", fig, table.reset_index(names="layer_head"))
    return notes + ["explainers: attention_from_it.png"]


def sampling_figure(out: Path, model, ids, toks, decode, k: int = 5, p: float = 0.9) -> str:
    from transformer.generate import filter_logits
    prefix = ids[:-len("tired")] if len(ids) == len(SENTENCE) else ids[:-1]
    with torch.no_grad():
        logits = model(torch.tensor([prefix]))[0, -1:].float()
    order = logits[0].argsort(descending=True)[:15]
    names = [repr(decode([int(i)])) for i in order]
    temps = (0.5, 1.0, 2.0)
    probs = {t: settle(filter_logits(logits, t).softmax(-1)[0, order]) for t in temps}
    pk = settle(filter_logits(logits, 1.0, top_k=k).softmax(-1)[0, order])
    pp = settle(filter_logits(logits, 1.0, top_p=p).softmax(-1)[0, order])
    base = probs[1.0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), layout="constrained")
    x = np.arange(len(order))
    for j, t in enumerate(temps):
        axes[0].bar(x + (j - 1) * 0.27, probs[t], 0.27, label=f"T = {t}", color=f"C{j}")
    axes[0].set_title("temperature: T < 1 sharpens, T > 1 flattens")
    axes[1].bar(x, base, color="lightgray", label="T = 1 (before the cut)")
    axes[1].bar(x, pk, 0.5, color="C3", label=f"top-k, k = {k} (renormalised)")
    axes[1].set_title(f"top-k: keep the {k} most likely tokens")
    axes[2].bar(x, base, color=["C2" if v > 0 else "lightgray" for v in pp],
                label=f"kept by top-p, p = {p}")
    axes[2].plot(x, np.cumsum(base), color="black", marker=".", label="cumulative probability")
    axes[2].axhline(p, color="C2", ls="--", lw=1)
    kept = int(torch.isfinite(filter_logits(logits, 1.0, top_p=p)).sum())
    axes[2].set_title(f"top-p (nucleus): smallest set with mass >= {p}\n"
                      f"({kept} tokens kept in all)")
    for ax in axes:
        short = all(len(n) <= 5 for n in names)
        ax.set_xticks(x, names, rotation=0 if short else 60, fontsize=8)
        ax.set_xlabel("next token (15 most likely)")
        ax.set_ylabel("probability")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Next-token distribution after \"{decode(prefix)}\"", fontsize=11)
    table = pd.DataFrame({"token": names, "logit": logits[0, order].numpy(),
                          **{f"p_T{t}": probs[t] for t in temps},
                          f"p_top{k}": pk, f"p_top_p{p}": pp, "cumulative": np.cumsum(base)})
    write_figure(out, "sampling", fig, table, tight=False)
    return "explainers: sampling.png"
