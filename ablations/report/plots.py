"""Plots chosen by a grid's `plots:` section; every PNG gets a CSV of the plotted numbers.

Each entry has a `kind` (registered in kinds.PLOTS by its drawing function: bar,
heatmap and cross_attention here, the line kinds in plot_lines.py, tune and frontier in
plot_sweeps.py; `ablate list --kinds` prints them all) and may add `where: SEL` to
restrict runs, `title`, `logx`, `logy`. On a tuned grid every kind draws each variant at
its chosen values unless the entry says `tuned: false`.
"""
from __future__ import annotations

from pathlib import Path

from .mpl import plt
import numpy as np

from transformer.validation import same_value

from .. import store
from ..store import atomic_write_text
from .analysis import per_seed, select
from .labels import key_label, metric_label
from .kinds import PLOTS, loaded, references
from .plot_data import (SkipPlot, ci_words, err, legend, needs, order, save, stats_table,
                        stem, values)
from .table import GridResults
from .tuning import runs_for


def render(grid: GridResults, plot: dict, out: Path, index: int = 0) -> tuple[Path, Path]:
    """Draw one plot into out/<stem>.png with out/<stem>.csv; raise SkipPlot if impossible."""
    kind = plot.get("kind")
    if kind not in loaded()[1]:
        raise SkipPlot(f"unknown plot kind {kind!r}; valid: {', '.join(PLOTS)}")
    if not plot.get("metric") and PLOTS[kind].needs_metric:
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
    data, fig = PLOTS[kind].fn(grid, runs, plot)
    ax = fig.axes[0]
    if not PLOTS[kind].needs_metric:   # a picture of a model: one title on top
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
            draw_references(ax, references("plot", plot))
    png, csv = out / f"{stem(index, plot)}.png", out / f"{stem(index, plot)}.csv"
    atomic_write_text(csv, data.to_csv(index=False))
    save(fig, png)
    return png, csv


def draw_references(ax, refs: list[tuple[float, str]]) -> None:
    """Dashed horizontal lines with their labels (chance, the unigram loss), added to the
    legend the drawer made."""
    if not refs:
        return
    old = ax.get_legend()
    title = old.get_title().get_text() if old else None
    for j, (value, label) in enumerate(refs):
        said = any(c.isdigit() for c in label)              # "chance (1/32)" says it
        ax.axhline(value, ls=(0, (5, 3)), lw=1.2, color=("dimgray", "black", "gray")[j % 3],
                   label=label if said else f"{label}: {value:.4g}", zorder=1)
    legend(ax, title or None)


@PLOTS.register("bar", "metric per value of x (default: the variant); bars = mean over "
                "seeds, error bars = 95% CI, dots = seeds", optional=("x", "hue"),
                axes=("x", "hue"))
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
                 f"(bars: mean over seeds; {ci_words(table)})")
    legend(ax, key_label(hue) if hue else None)
    if plot.get("logy"):
        ax.set_yscale("log")
    return table, fig


@PLOTS.register("heatmap", "mean metric over two axes x and y, annotated with mean ± std",
                required=("x", "y"), axes=("x", "y"))
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


@PLOTS.register("cross_attention", "where a trained encoder-decoder's decoder reads the "
                "source: cross-attention per decoder layer on one validation example (the "
                "first seed's run that `where` selects)", needs_metric=False)
def _cross_attention(grid, runs, plot):
    from .cross_attention import cross_attention_plot, load_run
    for run_id in runs.sort_values("seed", kind="stable")["run_id"]:
        try:
            model, task = load_run(store.runs_dir(grid.path) / run_id)
        except FileNotFoundError:                  # no model.pt kept for this run
            continue
        except store.Unreadable as e:              # damaged: named, and the next seed drawn
            if str(e) not in grid.problems:
                grid.problems.append(str(e))
            continue
        try:
            return cross_attention_plot(model, task)
        except ValueError as e:                    # no cross-attention, no source
            raise SkipPlot(str(e)) from None
    raise SkipPlot("no selected run kept its weights (model.pt)")


def plot_grid(grid: GridResults, out: Path) -> list[dict]:
    """Every plot of the grid: [{index, spec, png, csv} or {index, spec, skipped}]."""
    done = []
    for i, plot in enumerate(grid.spec.get("plots") or []):
        try:
            png, csv = render(grid, plot, Path(out), i)
            done.append({"index": i, "spec": plot, "png": png, "csv": csv})
        except SkipPlot as e:
            done.append({"index": i, "spec": plot, "skipped": str(e)})
        except Exception as e:          # a figure that fails is named, never the end
            why = str(e).splitlines()[0] if str(e) else ""
            done.append({"index": i, "spec": plot, "failed": True,
                         "skipped": f"{type(e).__name__}: {why}"})
    return done
