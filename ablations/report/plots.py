"""Plots chosen by a grid's `plots:` section; every PNG gets a CSV of the plotted numbers.

Kinds (each entry may add `where: SEL` to restrict runs, `title`, `logx`, `logy`):
  bar            metric per value of `x` (default: the variant), optional `hue`;
                 bars = mean over seeds, error bars = 95% CI, dots = individual seeds
  curve          learning curves of `metric` from metrics.csv, one line per `hue`
                 (default: variant), band = ± 1 std across seeds
  line           metric vs axis `x`, one line per `hue`, error bars = 95% CI; runs whose
                 architecture ignores `x` (value absent) are drawn as dashed references
  heatmap        mean metric over two axes `x` and `y`, annotated with mean ± std
  extrapolation  `metric@L` (and `metric` at the training length) vs evaluation length
                 L, one line per `hue`, error bars = 95% CI
  layers         `metric/layer<i>` vs the layer index i, one line per `hue`
                 (`metric@init`: at step 0)
  frontier       metric@NAME (quality) vs diversity@NAME, one point per evaluation
                 NAME, the Pareto front dashed
  tune           metric vs a tuned setting (default: the first `tune:` key), one line
                 per variant, each variant's chosen value starred
On a tuned grid every other kind draws each variant at its chosen values unless the
entry says `tuned: false`.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from transformer.validation import same_value  # noqa: E402

from .. import schema, store  # noqa: E402
from ..store import atomic_write_text  # noqa: E402
from .analysis import describe, per_seed, select  # noqa: E402
from .labels import key_label, metric_label  # noqa: E402
from .plot_data import SkipPlot, err, needs, order, save, stats_table, stem, values  # noqa: E402,F401
from .plot_lines import curve, extrapolation, layers, line  # noqa: E402
from .results import GridResults  # noqa: E402
from .tuning import SELECT_BY, runs_for, scores, sweep, tune_keys  # noqa: E402


def render(grid: GridResults, plot: dict, out: Path, index: int = 0) -> tuple[Path, Path]:
    """Draw one plot into out/<stem>.png with out/<stem>.csv; raise SkipPlot if impossible."""
    kind = plot.get("kind")
    if kind not in DRAW:
        raise SkipPlot(f"unknown plot kind {kind!r}; valid: {', '.join(DRAW)}")
    if not plot.get("metric") and schema.PLOT_KINDS[kind].needs_metric:
        raise SkipPlot(f"{kind} plot needs a metric")
    runs = runs_for(grid, plot)
    try:
        runs = runs[select(runs, plot.get("where"))]
    except KeyError as e:
        raise SkipPlot(str(e.args[0])) from None
    if runs.empty:
        raise SkipPlot("no finished runs to plot")
    for k in ("x", "y", "hue"):
        if plot.get(k) and plot[k] not in runs.columns:
            raise SkipPlot(f"unknown {k} key {plot[k]!r}")
    data, fig = DRAW[kind](grid, runs, plot)
    ax = fig.axes[0]
    if not schema.PLOT_KINDS[kind].needs_metric:   # a picture of a model: one title on top
        if plot.get("title"):
            fig.suptitle(f"{plot['title']}\n{fig.get_suptitle()}", fontsize=10)
    else:
        if plot.get("title"):             # keep the generated line saying what bars mean
            sub = ax.get_title().partition("\n")[2]
            ax.set_title(str(plot["title"]) + (f"\n{sub}" if sub else ""))
        ax.title.set_fontsize(11)
        if kind != "heatmap":
            for a in fig.axes:
                a.grid(alpha=0.3)
    png, csv = out / f"{stem(index, plot)}.png", out / f"{stem(index, plot)}.csv"
    atomic_write_text(csv, data.to_csv(index=False))
    save(fig, png)
    return png, csv


def _bar(grid, runs, plot):
    metric, x, hue = plot["metric"], plot.get("x") or "label", plot.get("hue")
    table = stats_table(grid, runs, metric, [x] + ([hue] if hue else []))
    xs = order(grid, x, table[x])
    hues = order(grid, hue, table[hue]) if hue else [None]
    xv, hv = values(runs, x), (values(runs, hue) if hue else None)
    cells = {}                                   # x position -> hue values present there
    for i, xval in enumerate(xs):
        here = table[table[x].map(lambda v, xval=xval: same_value(v, xval))]
        cells[i] = [(h, here if h is None else here[here[hue].map(
            lambda v, h=h: same_value(v, h))]) for h in hues]
        cells[i] = [(h, row) for h, row in cells[i] if len(row)]
    width = 0.8 / max(len(c) for c in cells.values())
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.75 * len(table) + 2)), 4.5))
    labelled = set()
    for i, xval in enumerate(xs):
        for j, (h, row) in enumerate(cells[i]):
            at = i + (j - (len(cells[i]) - 1) / 2) * width
            color = f"C{hues.index(h) % 10}" if hue else f"C{i % 10}"
            ax.bar(at, row["mean"].iloc[0], width * 0.9, yerr=err(row), capsize=4,
                   alpha=0.85, color=color,
                   label=str(h) if hue and str(h) not in labelled else None)
            labelled.add(str(h))
            m = xv.map(lambda z, xval=xval: same_value(z, xval))
            if hue:
                m &= hv.map(lambda z, h=h: same_value(z, h))
            pts = per_seed(runs[m], metric)
            ax.scatter(at + np.linspace(-0.2, 0.2, len(pts)) * width, pts, s=14,
                       color="black", zorder=3,
                       label="individual seeds" if "seeds" not in labelled else None)
            labelled.add("seeds")
    long = sum(len(str(v)) for v in xs) > 40
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=30 if long else 0,
                  ha="right" if long else "center")
    ax.set_xlabel(key_label(x))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{metric_label(metric)} by {key_label(x)}\n"
                 "(bars: mean over seeds; error bars: 95% CI)")
    ax.legend(fontsize=8, title=key_label(hue) if hue else None)
    if plot.get("logy"):
        ax.set_yscale("log")
    return table, fig


def _heatmap(grid, runs, plot):
    needs(plot, "x", "y")
    metric, x, y = plot["metric"], plot["x"], plot["y"]
    table = stats_table(grid, runs, metric, [y, x])
    xs, ys = order(grid, x, table[x]), order(grid, y, table[y])
    grid_vals = np.full((len(ys), len(xs)), np.nan)
    xi, yi = {str(v): j for j, v in enumerate(xs)}, {str(v): i for i, v in enumerate(ys)}
    for _, r in table.iterrows():
        grid_vals[yi[str(r[y])], xi[str(r[x])]] = r["mean"]
    fig, ax = plt.subplots(figsize=(1.4 * len(xs) + 3, 1.0 * len(ys) + 2.2))
    im = ax.imshow(np.ma.masked_invalid(grid_vals), cmap="viridis", aspect="auto")
    for _, r in table.iterrows():
        i, j = yi[str(r[y])], xi[str(r[x])]
        text = "n/a" if r["n"] == 0 else f"{r['mean']:.3g}" + (
            f"\n± {r['std']:.2g}" if r["n"] > 1 else "") + f"\nn={r['n']}"
        light = r["n"] == 0 or im.norm(r["mean"]) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="black" if light else "white")
    fig.colorbar(im, ax=ax, label=metric_label(metric))
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(key_label(x))
    ax.set_ylabel(key_label(y))
    ax.set_title(f"{metric_label(metric)}: {key_label(y)} × {key_label(x)}\n"
                 "(mean ± std over seeds)")
    return table, fig


def _tune(grid, runs, plot):
    """Metric against a tuned setting per variant, its chosen value starred. A diverged
    run counts at its initial loss for val_loss (as in the choice) and not at all for
    other metrics: its last evaluation before diverging would flatter it."""
    x = plot.get("x") or tune_keys(grid.spec)[0]
    metric = plot["metric"]
    if metric not in runs.columns:
        raise SkipPlot(f"metric {metric!r} is not in the stored results")
    gone = runs["status"] == "diverged"
    vals = scores(grid, runs) if metric == SELECT_BY else runs[metric].where(~gone)
    runs = runs.assign(**{metric: vals})
    table, fig = line(grid, runs, {**plot, "x": x, "hue": plot.get("hue") or "variant",
                                   "logx": plot.get("logx", True)})
    ax = fig.axes[0]
    chosen = sweep(grid)
    chosen = chosen[chosen["best"]] if not chosen.empty else chosen
    hue = plot.get("hue") or "variant"
    for j, h in enumerate(order(grid, hue, table[hue])):
        pick = chosen[chosen["variant"] == h] if hue == "variant" else chosen.iloc[:0]
        row = table[(table[hue] == h) & table[x].isin(pick[x].tolist())] if len(pick) else None
        if row is not None and len(row):
            ax.scatter(row[x].astype(float), row["mean"], marker="*", s=160, zorder=4,
                       color=f"C{j}", edgecolor="black",
                       label="chosen (lowest val_loss)" if j == 0 else None)
    ax.legend(fontsize=8, title=key_label(hue))
    ax.set_title(f"{metric_label(metric)} vs {key_label(x)}, every swept value\n(mean over "
                 "seeds; error bars: 95% CI; star: each variant's chosen value)")
    return table, fig


def _frontier(grid, runs, plot):
    """Quality against diversity, one point per evaluation (e.g. one sampling setting),
    with the Pareto front: the settings no other beats on both."""
    y, x = plot["metric"], plot["diversity"]
    names = plot.get("evals") or [c.split("@", 1)[1] for c in runs.columns
                                  if c.startswith(y + "@") and f"{x}@{c.split('@', 1)[1]}"
                                  in runs.columns]
    rows = []
    for name in names:
        if f"{x}@{name}" not in runs.columns or f"{y}@{name}" not in runs.columns:
            raise SkipPlot(f"evaluation {name!r} has no {x} and {y}")
        sx, sy = (describe(per_seed(runs, f"{m}@{name}")) for m in (x, y))
        rows.append({"evaluation": name, "n": sx.n, x: sx.mean, f"{x}_std": sx.std,
                     f"{x}_ci95_low": sx.ci_low, f"{x}_ci95_high": sx.ci_high, y: sy.mean,
                     f"{y}_std": sy.std, f"{y}_ci95_low": sy.ci_low,
                     f"{y}_ci95_high": sy.ci_high})
    if not rows:
        raise SkipPlot(f"no evaluation has both {x} and {y}")
    table = pd.DataFrame(rows)
    front = [i for i, r in table.iterrows() if not any(
        (o[x] >= r[x] and o[y] >= r[y]) and (o[x] > r[x] or o[y] > r[y])
        for _, o in table.iterrows())]
    table["pareto"] = table.index.isin(front)
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, r in table.iterrows():
        ax.errorbar(r[x], r[y], xerr=[[max(0, r[x] - r[f"{x}_ci95_low"])],
                                      [max(0, r[f"{x}_ci95_high"] - r[x])]] if r["n"] > 1
                    else None, yerr=[[max(0, r[y] - r[f"{y}_ci95_low"])],
                                     [max(0, r[f"{y}_ci95_high"] - r[y])]] if r["n"] > 1
                    else None, fmt="o", color=f"C{i % 10}", capsize=3)
        ax.annotate(r["evaluation"], (r[x], r[y]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    edge = table[table["pareto"]].sort_values(x)
    ax.plot(edge[x], edge[y], ls="--", color="gray", label="Pareto front")
    ax.set_xlabel(f"{metric_label(x)} (diversity)")
    ax.set_ylabel(f"{metric_label(y)} (quality)")
    ax.legend(fontsize=8)
    ax.set_title("Quality vs diversity per evaluation\n(mean over seeds; error bars: "
                 "95% CI)")
    return table, fig


def _cross_attention(grid, runs, plot):
    from .cross_attention import cross_attention_plot, load_run
    for run_id in runs.sort_values("seed", kind="stable")["run_id"]:
        try:
            model, task = load_run(store.runs_dir(grid.path) / run_id)
        except FileNotFoundError:                  # no model.pt kept for this run
            continue
        try:
            return cross_attention_plot(model, task)
        except ValueError as e:                    # no cross-attention, no source
            raise SkipPlot(str(e)) from None
    raise SkipPlot("no selected run kept its weights (model.pt)")


DRAW = {"bar": _bar, "curve": curve, "line": line, "heatmap": _heatmap,
        "extrapolation": extrapolation, "layers": layers, "tune": _tune,
        "frontier": _frontier, "cross_attention": _cross_attention}
assert set(DRAW) == set(schema.PLOT_KINDS), "a plot kind without its drawing function"


def plot_grid(grid: GridResults, out: Path) -> list[dict]:
    """Every plot of the grid: [{index, spec, png, csv} or {index, spec, skipped}]."""
    done = []
    for i, plot in enumerate(grid.spec.get("plots") or []):
        try:
            png, csv = render(grid, plot, Path(out), i)
            done.append({"index": i, "spec": plot, "png": png, "csv": csv})
        except SkipPlot as e:
            done.append({"index": i, "spec": plot, "skipped": str(e)})
    return done
