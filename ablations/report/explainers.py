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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from .plots import save  # noqa: E402
from .. import store  # noqa: E402

SENTENCE = "The animal didn't cross the street because it was too tired"
CAPTIONS = {
    "sinusoidal_encoding": "The sinusoidal positional encoding (Vaswani et al. 2017)",
    "attention_entropy_init": "Attention entropy at initialisation: 1/sqrt(d_k) scaling "
                              "keeps softmax from saturating",
    "attention_heads_layer": "Attention per head on a sample sentence (trained char LM)",
    "attention_from_it": "Where \"it\" looks: attention from the word \"it\", every layer "
                         "and head",
    "sampling": "Temperature, top-k and top-p on a trained model's next-token logits",
}


def figure_order(filename: str) -> tuple:
    """Story order for REPORT.md: encoding, entropy, attention maps, sampling."""
    for i, prefix in enumerate(CAPTIONS):
        if filename.startswith(prefix):
            rest = filename[len(prefix):].split(".")[0]
            return (i, int(rest) if rest.isdigit() else 0, filename)
    return (len(CAPTIONS), 0, filename)


def caption(filename: str) -> str:
    for prefix, text in CAPTIONS.items():
        if filename.startswith(prefix):
            layer = filename[len(prefix):].split(".")[0]
            return text + (f", layer {layer}" if layer.isdigit() else "")
    return Path(filename).stem.replace("_", " ")


def settle(x) -> np.ndarray:
    """Numbers rounded to 5 decimals before they are drawn or written: CPUs differ in the
    last bits of sin, exp and matmul, and a regenerated figure must not change with them."""
    return np.round(np.asarray(x, dtype=np.float64), 5)


def _write(out: Path, name: str, fig, table: pd.DataFrame, tight: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store.atomic_write_text(out / f"{name}.csv", table.to_csv(index=False, float_format="%.5f"))
    save(fig, out / f"{name}.png", tight)


def sinusoidal_figure(out: Path, n_positions: int = 128, d_model: int = 128) -> str:
    from transformer.positional import sinusoidal_table
    pe = settle(sinusoidal_table(n_positions, d_model))
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
    _write(out, "sinusoidal_encoding", fig, table)
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
    _write(out, "attention_entropy_init", fig, table)
    return "explainers: attention_entropy_init.png"


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
    from transformer import ModelConfig, build_model
    from ..tasks.corpus import load_corpus
    saved = torch.load(rdir / store.MODEL, map_location="cpu", weights_only=True)
    model = build_model(ModelConfig(**saved["config"]["model"]))
    model.load_state_dict(saved["state_dict"])
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
    return model.eval(), ids, [corpus.decode([i]) for i in ids], corpus.decode


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
        _write(out, f"attention_heads_layer{layer}", fig, table, tight=False)
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
    _write(out, "attention_from_it", fig, table.reset_index(names="layer_head"))
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
    _write(out, "sampling", fig, table, tight=False)
    return "explainers: sampling.png"


def make_all(results: Path) -> list[str]:
    """Draw every explainer that the stored results allow; returns notes to print."""
    out = Path(results) / "explainers"
    for f in out.glob("*") if out.is_dir() else []:     # figures of a run now gone
        if f.suffix in (".png", ".csv") and f.name.startswith(tuple(CAPTIONS)):
            f.unlink()
    notes = [sinusoidal_figure(out), entropy_figure(out)]
    rdir, cfg = find_lm_run(results)
    if rdir is None:
        return notes + ["explainers: no finished decoder LM run with model.pt under "
                        f"{results}; attention heatmaps and sampling figures skipped"]
    try:
        cache = store.cache_dir(results)          # where the grid runner caches corpora
        model, ids, toks, decode = load_lm(rdir, cfg, cache if cache.is_dir() else None)
        if len(ids) > model.cfg.max_len and model.cfg.pos == "learned":
            raise LookupError(f"the sentence ({len(ids)} tokens) exceeds the learned PE table")
    except (LookupError, OSError, KeyError, RuntimeError) as e:
        return notes + [f"explainers: cannot use run {rdir.name} ({e}); attention heatmaps "
                        "and sampling figures skipped"]
    run = f"{store.grid_of(rdir)}/{rdir.name}"
    notes += attention_figures(out, model, ids, toks, run)
    notes.append(sampling_figure(out, model, ids, toks, decode))
    return notes
