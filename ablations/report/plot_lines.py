"""Line plots: learning curves, a metric against an axis, and loss against evaluation
length (extrapolation)."""
from __future__ import annotations

from .mpl import plt
import numpy as np
import pandas as pd

import math

from transformer.validation import same_value

from .analysis import per_seed
from .kinds import PLOTS
from .labels import key_label, metric_label
from .plot_data import (SkipPlot, ci_words, err, interval, legend, needs, order,
                        stats_table, values)
from ..selector import present
from .table import get_path, load_curves


MARKERS = "osD^vP*Xph<>"


def band_lines(ax, groups, xlab, ylab, plot, ref=None):
    """One line per group with its own marker, nudged sideways (the CSV keeps the true x)
    so that series on top of each other stay visible; the legend right of the axes."""
    xs = [v for _, df in groups for v in df["x"]]
    logx = use_logx(xs, plot)
    for j, (name, df) in enumerate(groups):
        at = dodge(df["x"], j, len(groups), xs, logx)
        ax.plot(at, df["mean"], marker=MARKERS[j % len(MARKERS)] if len(df) < 30 else None,
                ms=5, color=f"C{j % 10}", label=name, alpha=0.9)
        if "ci95_low" in df and df["n"].max() > 1:
            ax.errorbar(at, df["mean"], yerr=err(df), fmt="none", ecolor=f"C{j % 10}",
                        capsize=3)
        elif "std" in df:
            ax.fill_between(at, df["mean"] - df["std"].fillna(0),
                            df["mean"] + df["std"].fillna(0), color=f"C{j % 10}",
                            alpha=0.2 if len(groups) <= 3 else 0.1)
    for j, (name, mean) in enumerate(ref or []):
        ax.axhline(mean, ls="--", color=f"C{(len(groups) + j) % 10}",
                   label=f"{name} (ignores axis)")
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab)
    legend(ax)
    scales(ax, xs, {**plot, "logx": logx})


def use_logx(xs, plot) -> bool:
    nums = [float(v) for v in xs if isinstance(v, (int, float, np.number))]
    logx = plot.get("logx")
    if logx is None:
        logx = bool(nums) and min(nums) > 0 and max(nums) / min(nums) >= 8
    return bool(logx)


def dodge(x: pd.Series, j: int, groups: int, every, logx: bool) -> np.ndarray:
    """Series j of `groups` shifted by up to a tenth of the closest gap between x values
    (a factor on a log axis), centred on the true x."""
    x = np.asarray(x, dtype=float)
    uniq = np.unique(np.asarray([float(v) for v in every], dtype=float))
    if groups < 2 or len(uniq) < 2 or len(x) > 30:   # a dense curve: nothing to separate
        return x
    scale = np.log(uniq) if logx and uniq.min() > 0 else uniq
    step = 0.2 * np.diff(scale).min() / (groups - 1)
    shift = (j - (groups - 1) / 2) * step
    return x * np.exp(shift) if logx and uniq.min() > 0 else x + shift


def scales(ax, xs, plot):
    nums = [float(v) for v in xs if isinstance(v, (int, float, np.number))]
    if use_logx(xs, plot):
        base = 2 if all(math.log2(v).is_integer() for v in nums) else 10
        ax.set_xscale("log", base=base)
        ax.set_xticks(sorted(set(nums)), [f"{v:g}" for v in sorted(set(nums))])
    elif nums and len(set(nums)) <= 12:
        ax.set_xticks(sorted(set(nums)), [f"{v:g}" for v in sorted(set(nums))])
    if plot.get("logy"):
        ax.set_yscale("log")


@PLOTS.register("curve", "learning curves from metrics.csv, one line per hue (default: "
                "the variant); band = ± 1 std over seeds", optional=("hue",), axes=("hue",))
def curve(grid, runs, plot):
    metric, hue = plot["metric"], plot.get("hue") or "label"
    curves = load_curves(grid, metric, runs)
    curves = curves[np.isfinite(curves["value"].astype(float))]
    if curves.empty:
        raise SkipPlot(f"no {metric!r} rows in any metrics.csv")
    names = values(runs, hue).set_axis(runs["run_id"])
    curves["hue"] = curves["run_id"].map(names)
    table = (curves.groupby(["hue", "step"], sort=False)["value"]
             .agg(n="count", mean="mean", std="std").reset_index())
    groups = [(str(h), table[table["hue"] == h].sort_values("step").rename(columns={"step": "x"}))
              for h in order(grid, hue, table["hue"])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if plot.get("logy") is None and "loss" in metric:
        v = table["mean"][table["mean"] > 0]
        plot = {**plot, "logy": len(v) > 0 and v.max() / v.min() > 10}
    band_lines(ax, groups, "training step", metric_label(metric), plot)
    legend(ax, key_label(hue))
    ax.set_title(f"{metric_label(metric)} during training\n(line: mean over seeds; "
                 "band: ± 1 std)")
    return table.rename(columns={"hue": hue}), fig


@PLOTS.register("line", "metric vs axis x, one line per hue; error bars = 95% CI; runs "
                "whose architecture ignores x are drawn as dashed references",
                required=("x",), optional=("hue",), axes=("x", "hue"))
def line(grid, runs, plot):
    needs(plot, "x")
    metric, x, hue = plot["metric"], plot["x"], plot.get("hue")
    has_x = runs[x].map(present)
    table = stats_table(grid, runs[has_x], metric, [x] + ([hue] if hue else []))
    xs = order(grid, x, table[x])
    numeric = all(isinstance(v, (int, float, np.number)) for v in xs)
    at = {str(v): (float(v) if numeric else i) for i, v in enumerate(xs)}
    groups = []
    for h in (order(grid, hue, table[hue]) if hue else [None]):
        sub = table if h is None else table[table[hue].map(lambda v, h=h: same_value(v, h))]
        sub = sub.assign(x=sub[x].map(lambda v: at[str(v)])).sort_values("x")
        groups.append((metric_label(metric) if h is None else str(h), sub))
    ref, extra = [], []                  # runs whose architecture ignores x: references
    for lab, sub in runs[~has_x].groupby("label", sort=False):
        st = interval(per_seed(sub, metric), metric)
        ref.append((lab, st["mean"]))
        extra.append({x: "(ignores axis)", **({hue: lab} if hue else {}), **st})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    band_lines(ax, groups, key_label(x), metric_label(metric), plot, ref)
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    if hue:
        legend(ax, key_label(hue))
    ax.set_title(f"{metric_label(metric)} vs {key_label(x)}\n(mean over seeds; "
                 f"{ci_words(table)})")
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if extra else table, fig


@PLOTS.register("extrapolation", "metric@L against evaluation length L (and metric at "
                "the training length), one line per hue; error bars = 95% CI",
                optional=("hue",), axes=("hue",))
def extrapolation(grid, runs, plot):
    metric, hue = plot["metric"], plot.get("hue") or "label"
    cols = {int(c.split("@", 1)[1]): c for c in runs.columns
            if c.startswith(metric + "@") and c.split("@", 1)[1].isdigit()}
    train_len = get_path(grid.configs.get(runs["run_id"].iloc[0], {}), "task.seq_len") \
        or get_path(grid.spec, "task.seq_len")
    if train_len and int(train_len) not in cols and metric in runs.columns:
        cols[int(train_len)] = metric
    if len(cols) < 2:
        raise SkipPlot(f"needs {metric}@L metrics at two or more lengths")
    names = values(runs, hue)
    rows = []
    for h in order(grid, hue, names):
        sub = runs[names.map(lambda v, h=h: same_value(v, h))]
        for length in sorted(cols):
            rows.append({hue: h, "length": length, "metric": cols[length],
                         **interval(per_seed(sub, cols[length]), metric)})
    table = pd.DataFrame(rows)
    groups = [(str(h), table[table[hue].map(lambda v, h=h: same_value(v, h))]
               .assign(x=lambda d: d["length"]).dropna(subset=["mean"]))
              for h in order(grid, hue, table[hue])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    band_lines(ax, groups, "evaluation length (tokens)", metric_label(metric), plot)
    if train_len:
        ax.axvline(int(train_len), color="gray", ls=":", label="training length")
    legend(ax, key_label(hue))
    ax.set_title(f"Length extrapolation: {metric_label(metric)}\n(mean over seeds; "
                 f"{ci_words(table)}; missing point = not evaluable)")
    return table, fig


@PLOTS.register("layers", "metric/layer<i> against the layer index, one line per hue "
                "(metric@init: at step 0, e.g. grad_norm@init)", optional=("hue",),
                axes=("hue",))
def layers(grid, runs, plot):
    """`<metric>/layer<i>` against the layer index i, one line per hue; `<metric>@init`
    reads step 0 (the untrained model), plain `<metric>` the last logged step."""
    metric, hue = plot["metric"], plot.get("hue") or "label"
    base, at_init = (metric[:-5], True) if metric.endswith("@init") else (metric, False)
    names = values(runs, hue).set_axis(runs["run_id"])
    rows = []
    i = 0
    while True:
        curves = load_curves(grid, f"{base}/layer{i}", runs)
        curves = curves[np.isfinite(curves["value"].astype(float))]
        if curves.empty:
            break
        pick = curves.groupby("run_id")["step"].transform("min" if at_init else "max")
        last = curves[curves["step"] == pick].drop_duplicates("run_id", keep="last")
        for h in order(grid, hue, names.unique()):
            ids = names[names.map(lambda v, h=h: same_value(v, h))].index
            sub = last[last["run_id"].isin(ids)]
            seeds = runs.set_index("run_id").loc[sub["run_id"], "seed"]
            vals = pd.Series(sub["value"].to_numpy(), index=seeds.to_numpy())
            rows.append({hue: h, "layer": i, **interval(vals.groupby(level=0).mean(), base)})
        i += 1
    if not rows:
        raise SkipPlot(f"no {base}/layer<i> rows in any metrics.csv")
    table = pd.DataFrame(rows)
    groups = [(str(h), table[table[hue].map(lambda v, h=h: same_value(v, h))]
               .assign(x=lambda d: d["layer"]).dropna(subset=["mean"]))
              for h in order(grid, hue, table[hue])]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    band_lines(ax, groups, "layer (input -> output)", metric_label(base),
               {**plot, "logx": False})
    ax.set_xticks(sorted(table["layer"].unique()))
    legend(ax, key_label(hue))
    when = "at initialisation (step 0)" if at_init else "at the last logged step"
    ax.set_title(f"{metric_label(base)} per layer {when}\n(mean over seeds; "
                 f"{ci_words(table)})")
    return table, fig
