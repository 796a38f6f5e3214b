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
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import schema, store  # noqa: E402
from .analysis import describe, match_value, per_seed, present, select, usable  # noqa: E402
from .results import GridResults, get_path, load_curves  # noqa: E402
from .labels import key_label, metric_label  # noqa: E402
from ..store import atomic_write_text  # noqa: E402

class SkipPlot(Exception):
    """The plot cannot be drawn from the stored results (the reason says why)."""


def stem(index: int, plot: dict) -> str:
    metric = re.sub(r"[^A-Za-z0-9]+", "_", str(plot.get("metric", "")).replace("@", "_at_"))
    by = "_".join(str(plot[k]).split(".")[-1] for k in ("x", "y", "hue") if plot.get(k))
    return f"{index + 1:02d}_{plot.get('kind', 'plot')}_{metric.strip('_')}" + \
        (f"_by_{by}" if by else "")


def save(fig, path: Path, tight: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight" if tight else None)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def render(grid: GridResults, plot: dict, out: Path, index: int = 0) -> tuple[Path, Path]:
    """Draw one plot into out/<stem>.png with out/<stem>.csv; raise SkipPlot if impossible."""
    kind = plot.get("kind")
    if kind not in DRAW:
        raise SkipPlot(f"unknown plot kind {kind!r}; valid: {', '.join(DRAW)}")
    if not plot.get("metric") and schema.PLOT_KINDS[kind].needs_metric:
        raise SkipPlot(f"{kind} plot needs a metric")
    runs = usable(grid.runs)
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
    if plot.get("title"):                 # keep the generated line saying what bars mean
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


def _needs(plot: dict, *keys: str) -> None:
    for k in keys:
        if not plot.get(k):
            raise SkipPlot(f"{plot['kind']} plot needs `{k}:`")


def _values(df: pd.DataFrame, key: str) -> pd.Series:
    """The key's value per run; a run without it (arch ignores it) shows its label."""
    return pd.Series([v if present(v) else lab for v, lab in zip(df[key], df["label"])],
                     index=df.index, dtype=object)


def _order(grid: GridResults, key: str, values) -> list:
    """Spec order for axis keys, manifest order for variants, else sorted/appearance."""
    uniq = list(dict.fromkeys(values))
    ordered = grid.variants if key == "label" else grid.axis_order(key) \
        if key in grid.axes else []
    if ordered:
        rank = {str(o): i for i, o in enumerate(ordered)}
        return sorted(uniq, key=lambda u: (rank.get(str(u), len(rank)), uniq.index(u)))
    if all(isinstance(u, (int, float, np.number)) for u in uniq):
        return sorted(uniq)
    return uniq


def _stats_table(grid, runs, metric, keys: list[str]) -> pd.DataFrame:
    if metric not in runs.columns:
        raise SkipPlot(f"metric {metric!r} is not in the stored results")
    if runs.empty:
        raise SkipPlot("no runs with a value for " + ", ".join(keys))
    vals = {k: _values(runs, k) for k in keys}
    combos = list(dict.fromkeys(zip(*[vals[k] for k in keys])))
    rows = []
    for combo in combos:
        mask = pd.Series(True, index=runs.index)
        for k, v in zip(keys, combo):
            mask &= vals[k].map(lambda h, v=v: match_value(h, v))
        s = describe(per_seed(runs[mask], metric))
        rows.append({**dict(zip(keys, combo)), "n": s.n, "mean": s.mean, "std": s.std,
                     "ci95_low": s.ci_low, "ci95_high": s.ci_high})
    df = pd.DataFrame(rows)
    if df["n"].sum() == 0:
        raise SkipPlot(f"no finite values of {metric}")
    return df


def _err(df: pd.DataFrame) -> np.ndarray:
    lo = (df["mean"] - df["ci95_low"]).fillna(0).clip(lower=0)
    hi = (df["ci95_high"] - df["mean"]).fillna(0).clip(lower=0)
    return np.vstack([lo.to_numpy(), hi.to_numpy()])


def _bar(grid, runs, plot):
    metric, x, hue = plot["metric"], plot.get("x") or "label", plot.get("hue")
    table = _stats_table(grid, runs, metric, [x] + ([hue] if hue else []))
    xs = _order(grid, x, table[x])
    hues = _order(grid, hue, table[hue]) if hue else [None]
    xv, hv = _values(runs, x), (_values(runs, hue) if hue else None)
    cells = {}                                   # x position -> hue values present there
    for i, xval in enumerate(xs):
        here = table[table[x].map(lambda v, xval=xval: match_value(v, xval))]
        cells[i] = [(h, here if h is None else here[here[hue].map(
            lambda v, h=h: match_value(v, h))]) for h in hues]
        cells[i] = [(h, row) for h, row in cells[i] if len(row)]
    width = 0.8 / max(len(c) for c in cells.values())
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.75 * len(table) + 2)), 4.5))
    labelled = set()
    for i, xval in enumerate(xs):
        for j, (h, row) in enumerate(cells[i]):
            at = i + (j - (len(cells[i]) - 1) / 2) * width
            color = f"C{hues.index(h) % 10}" if hue else f"C{i % 10}"
            ax.bar(at, row["mean"].iloc[0], width * 0.9, yerr=_err(row), capsize=4,
                   alpha=0.85, color=color,
                   label=str(h) if hue and str(h) not in labelled else None)
            labelled.add(str(h))
            m = xv.map(lambda z, xval=xval: match_value(z, xval))
            if hue:
                m &= hv.map(lambda z, h=h: match_value(z, h))
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


def _band_lines(ax, groups, xlab, ylab, plot, ref=None):
    for j, (name, df) in enumerate(groups):
        ax.plot(df["x"], df["mean"], marker="o" if len(df) < 30 else None, ms=4,
                color=f"C{j}", label=name)
        if "ci95_low" in df and df["n"].max() > 1:
            ax.errorbar(df["x"], df["mean"], yerr=_err(df), fmt="none", ecolor=f"C{j}",
                        capsize=3)
        elif "std" in df:
            ax.fill_between(df["x"], df["mean"] - df["std"].fillna(0),
                            df["mean"] + df["std"].fillna(0), color=f"C{j}",
                            alpha=0.2 if len(groups) <= 3 else 0.1)
    for j, (name, mean) in enumerate(ref or []):
        ax.axhline(mean, ls="--", color=f"C{len(groups) + j}", label=f"{name} (ignores axis)")
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab)
    ax.legend(fontsize=8)
    _scales(ax, [v for _, df in groups for v in df["x"]], plot)


def _scales(ax, xs, plot):
    nums = [float(v) for v in xs if isinstance(v, (int, float, np.number))]
    logx = plot.get("logx")
    if logx is None:
        logx = bool(nums) and min(nums) > 0 and max(nums) / min(nums) >= 8
    if logx:
        base = 2 if all(math.log2(v).is_integer() for v in nums) else 10
        ax.set_xscale("log", base=base)
        ax.set_xticks(sorted(set(nums)), [f"{v:g}" for v in sorted(set(nums))])
    elif nums and len(set(nums)) <= 12:
        ax.set_xticks(sorted(set(nums)), [f"{v:g}" for v in sorted(set(nums))])
    if plot.get("logy"):
        ax.set_yscale("log")


def _curve(grid, runs, plot):
    metric, hue = plot["metric"], plot.get("hue") or "label"
    curves = load_curves(grid, metric, runs)
    curves = curves[np.isfinite(curves["value"].astype(float))]
    if curves.empty:
        raise SkipPlot(f"no {metric!r} rows in any metrics.csv")
    names = _values(runs, hue).set_axis(runs["run_id"])
    curves["hue"] = curves["run_id"].map(names)
    table = (curves.groupby(["hue", "step"], sort=False)["value"]
             .agg(n="count", mean="mean", std="std").reset_index())
    groups = [(str(h), table[table["hue"] == h].sort_values("step").rename(columns={"step": "x"}))
              for h in _order(grid, hue, table["hue"])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if plot.get("logy") is None and "loss" in metric:
        v = table["mean"][table["mean"] > 0]
        plot = {**plot, "logy": len(v) > 0 and v.max() / v.min() > 10}
    _band_lines(ax, groups, "training step", metric_label(metric), plot)
    ax.legend(title=key_label(hue), fontsize=8)
    ax.set_title(f"{metric_label(metric)} during training\n(line: mean over seeds; "
                 "band: ± 1 std)")
    return table.rename(columns={"hue": hue}), fig


def _line(grid, runs, plot):
    _needs(plot, "x")
    metric, x, hue = plot["metric"], plot["x"], plot.get("hue")
    has_x = runs[x].map(present)
    table = _stats_table(grid, runs[has_x], metric, [x] + ([hue] if hue else []))
    xs = _order(grid, x, table[x])
    numeric = all(isinstance(v, (int, float, np.number)) for v in xs)
    at = {str(v): (float(v) if numeric else i) for i, v in enumerate(xs)}
    groups = []
    for h in (_order(grid, hue, table[hue]) if hue else [None]):
        sub = table if h is None else table[table[hue].map(lambda v, h=h: match_value(v, h))]
        sub = sub.assign(x=sub[x].map(lambda v: at[str(v)])).sort_values("x")
        groups.append((metric_label(metric) if h is None else str(h), sub))
    ref, extra = [], []                  # runs whose architecture ignores x: references
    for lab, sub in runs[~has_x].groupby("label", sort=False):
        st = describe(per_seed(sub, metric))
        ref.append((lab, st.mean))
        extra.append({x: "(ignores axis)", **({hue: lab} if hue else {}), "n": st.n,
                      "mean": st.mean, "std": st.std, "ci95_low": st.ci_low,
                      "ci95_high": st.ci_high})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _band_lines(ax, groups, key_label(x), metric_label(metric), plot, ref)
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    if hue:
        ax.legend(title=key_label(hue), fontsize=8)
    ax.set_title(f"{metric_label(metric)} vs {key_label(x)}\n(mean over seeds; "
                 "error bars: 95% CI)")
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if extra else table, fig


def _heatmap(grid, runs, plot):
    _needs(plot, "x", "y")
    metric, x, y = plot["metric"], plot["x"], plot["y"]
    table = _stats_table(grid, runs, metric, [y, x])
    xs, ys = _order(grid, x, table[x]), _order(grid, y, table[y])
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


def _extrapolation(grid, runs, plot):
    metric, hue = plot["metric"], plot.get("hue") or "label"
    cols = {int(c.split("@", 1)[1]): c for c in runs.columns
            if c.startswith(metric + "@") and c.split("@", 1)[1].isdigit()}
    train_len = get_path(grid.configs.get(runs["run_id"].iloc[0], {}), "task.seq_len") \
        or get_path(grid.spec, "task.seq_len")
    if train_len and int(train_len) not in cols and metric in runs.columns:
        cols[int(train_len)] = metric
    if len(cols) < 2:
        raise SkipPlot(f"needs {metric}@L metrics at two or more lengths")
    names = _values(runs, hue)
    rows = []
    for h in _order(grid, hue, names):
        sub = runs[names.map(lambda v, h=h: match_value(v, h))]
        for length in sorted(cols):
            s = describe(per_seed(sub, cols[length]))
            rows.append({hue: h, "length": length, "metric": cols[length], "n": s.n,
                         "mean": s.mean, "std": s.std, "ci95_low": s.ci_low,
                         "ci95_high": s.ci_high})
    table = pd.DataFrame(rows)
    groups = [(str(h), table[table[hue].map(lambda v, h=h: match_value(v, h))]
               .assign(x=lambda d: d["length"]).dropna(subset=["mean"]))
              for h in _order(grid, hue, table[hue])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _band_lines(ax, groups, "evaluation length (tokens)", metric_label(metric), plot)
    if train_len:
        ax.axvline(int(train_len), color="gray", ls=":", label="training length")
    ax.legend(title=key_label(hue), fontsize=8)
    ax.set_title(f"Length extrapolation: {metric_label(metric)}\n(mean over seeds; "
                 "error bars: 95% CI; missing point = not evaluable)")
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


DRAW = {"bar": _bar, "curve": _curve, "line": _line, "heatmap": _heatmap,
        "extrapolation": _extrapolation, "cross_attention": _cross_attention}
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
