"""Plots over a ladder's sizes (grid/ladder.py): an effect against model size with its
fitted trend (`ladder_effect`), and the scaling curves, a metric against size per
variant (`ladder_scaling`). x is N_s, the size's non-embedding parameters, on a log
scale; on a tuned grid every point is its variant's best value at that size."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..selector import describe as describe_selector
from .analysis import describe, per_seed
from .kinds import PLOTS, better_of
from .labels import metric_label
from .mpl import plt
from .plot_data import SkipPlot, settle, values
from .trend import fit_slope, size_effects


def _log_axes(ax, xs, logy: bool) -> None:
    """Log x ticked at the sizes only (their N), and a log y in plain numbers."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullLocator
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(list(xs), [f"{v:,.0f}" for v in xs])
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(NullLocator())


def _ladder_runs(runs: pd.DataFrame) -> pd.DataFrame:
    if "size" not in runs.columns or runs["size"].isna().all():
        raise SkipPlot("no runs of a ladder size (run the grid's ladder)")
    return runs.dropna(subset=["size"])


@PLOTS.register("ladder_effect", "compare − against (sign-flipped when lower is better: "
                "up is compare better) at each ladder size against non-embedding "
                "parameters (log x), error bars = 95% CI, the fitted trend dashed",
                required=("compare", "against"), optional=("better",),
                selectors=("compare", "against"), directed=True, ladder=True)
def ladder_effect(grid, runs, plot):
    better = better_of(plot)
    effects, points = size_effects(_ladder_runs(runs), plot, plot["metric"], better)
    fit = fit_slope(*zip(*points)) if points else fit_slope([], [])
    table = pd.DataFrame([{"size": e.size, "params": e.params, "n": e.diff.n,
                           "effect": e.gain, "ci95_low": e.ci_low, "ci95_high": e.ci_high,
                           "slope_per_10x": fit.slope, "slope_ci95_low": fit.ci_low,
                           "slope_ci95_high": fit.ci_high} for e in effects])
    num = table.columns.drop("size")
    table[num] = settle(table[num].to_numpy())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x, y = table["params"].to_numpy(), table["effect"].to_numpy()
    lo = np.nan_to_num(y - table["ci95_low"].to_numpy()).clip(min=0)
    hi = np.nan_to_num(table["ci95_high"].to_numpy() - y).clip(min=0)
    ax.errorbar(x, y, yerr=np.vstack([lo, hi]), fmt="o-", capsize=4, color="C0",
                label="effect at each size (95% CI)")
    for xi, yi, name in zip(x, y, table["size"]):
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if math.isfinite(fit.slope):
        grid_x = np.geomspace(x.min(), x.max(), 50)
        ax.plot(grid_x, settle(fit.intercept + fit.slope * np.log10(grid_x)), ls="--",
                color="C1", label=f"fit: {fit.slope:+.3g} per 10x params, 95% CI "
                f"[{fit.ci_low:+.3g}, {fit.ci_high:+.3g}]")
    ax.axhline(0, color="gray", lw=1)
    _log_axes(ax, x, logy=False)
    ax.set_xlabel("non-embedding parameters N (log scale)")
    ax.set_ylabel(f"effect on {metric_label(plot['metric'])}")
    ax.legend(fontsize=8)
    ax.set_title(f"{describe_selector(plot['compare'])} over "
                 f"{describe_selector(plot['against'])} by model size\n(up: compare better; "
                 "error bars: 95% CI; dashed: OLS on per-seed effects)")
    return table, fig


def series(runs: pd.DataFrame, hue: str | None) -> pd.Series:
    """What a scaling curve joins across sizes: the hue's value, or the label with its
    `size=NAME` part taken out."""
    if hue:
        return values(runs, hue).astype(str)
    out = [re.sub(r"(^|: |, )size=[^,]*(, )?", lambda m: m[1] if m[2] else "", lab)
           for lab in runs["label"]]
    return pd.Series([s.rstrip(": ") or "base" for s in out], index=runs.index)


@PLOTS.register("ladder_scaling", "metric against non-embedding parameters per variant "
                "(log-log: the scaling curves), one line per hue (default: the variant "
                "without its size); error bars = 95% CI", optional=("hue",), axes=("hue",),
                ladder=True)
def ladder_scaling(grid, runs, plot):
    metric, runs = plot["metric"], _ladder_runs(runs)
    if metric not in runs.columns:
        raise SkipPlot(f"metric {metric!r} is not in the stored results")
    runs = runs.assign(_series=series(runs, plot.get("hue")))
    rows = []
    for name, sub in runs.groupby("_series", sort=False):
        for size, part in sub.groupby("size", sort=False):
            s = describe(per_seed(part, metric))
            rows.append({"series": name, "size": size,
                         "params": float(part["size_params"].iloc[0]), "n": s.n,
                         "mean": s.mean, "std": s.std, "ci95_low": s.ci_low,
                         "ci95_high": s.ci_high})
    table = pd.DataFrame(rows).sort_values(["series", "params"], kind="stable")
    if table["n"].sum() == 0:
        raise SkipPlot(f"no finite values of {metric}")
    num = table.columns.drop(["series", "size"])
    table[num] = settle(table[num].to_numpy())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j, name in enumerate(dict.fromkeys(series(runs, plot.get("hue")))):
        df = table[table["series"] == name]
        lo = (df["mean"] - df["ci95_low"]).fillna(0).clip(lower=0)
        hi = (df["ci95_high"] - df["mean"]).fillna(0).clip(lower=0)
        ax.errorbar(df["params"], df["mean"], yerr=np.vstack([lo, hi]), fmt="o-",
                    capsize=3, color=f"C{j % 10}", label=name)
    _log_axes(ax, sorted(set(table["params"])), logy=plot.get("logy", True))
    ax.set_xlabel("non-embedding parameters N (log scale)")
    ax.set_ylabel(metric_label(metric) + (" (log scale)" if plot.get("logy", True) else ""))
    ax.legend(fontsize=8, title=plot.get("hue") or "variant")
    ax.set_title(f"{metric_label(metric)} against model size\n(each variant at its own "
                 "best tuned value per size; error bars: 95% CI)")
    return table.reset_index(drop=True), fig
