"""Effects drawn as effects: the difference a change makes, with its 95% CI and a line at
zero, instead of two tall bars whose small gap (0.01-0.07 nats) the eye cannot judge.

The difference is the checks' own (stats.difference: paired by seed when both sides have
the same seeds, Welch otherwise), so a plotted interval that excludes zero is the one a
`compare` check would call significant before the Holm correction.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from transformer.validation import ConfigError, same_value

from ..selector import describe as describe_selector
from .analysis import per_seed, select
from .kinds import PLOTS, better_of
from .labels import key_label, metric_label
from .mpl import plt
from .plot_data import SkipPlot, err, legend, order, values
from .stats import difference


@PLOTS.register("effect", "compare − against (or each value of x − the `baseline` "
                "selector, per hue), paired by seed as the checks are; error bars = 95% "
                "CI of the difference, a dashed line at 0 (no effect)",
                optional=("compare", "against", "x", "baseline", "hue"),
                selectors=("compare", "against", "baseline"), axes=("x", "hue"),
                one_of=("against", "baseline"))
def effect(grid, runs, plot):
    metric = plot["metric"]
    if metric not in runs.columns:
        raise SkipPlot(f"metric {metric!r} is not in the stored results")
    if "against" in plot:
        if "compare" not in plot:
            raise SkipPlot("an effect plot with against: needs compare:")
        x, hue = "compare", None
        base_name = describe_selector(plot["against"])
        sides = [(describe_selector(plot["compare"]), None, runs[select(runs, plot["compare"])],
                  runs[select(runs, plot["against"])])]
    else:
        if not plot.get("x") or not plot.get("baseline"):
            raise SkipPlot("an effect plot needs compare: and against:, or x: and baseline:")
        x, hue = plot["x"], plot.get("hue")
        base_name = describe_selector(plot["baseline"])
        sides = _against_baseline(grid, runs, plot["baseline"], x, hue)
    rows = []
    for xval, h, a, b in sides:
        if a.empty or b.empty:
            continue
        d = difference(per_seed(a, metric), per_seed(b, metric))
        rows.append({x: xval, **({hue: h} if hue else {}), "against": base_name,
                     "n": d.n, "test": "paired" if d.paired else "Welch", "mean": d.a.mean,
                     "against_mean": d.b.mean, "diff": d.diff, "ci95_low": d.ci_low,
                     "ci95_high": d.ci_high, "p": d.p})
    if not rows:
        raise SkipPlot(f"no selected runs on both sides against {base_name}")
    table = pd.DataFrame(rows)
    return table, _draw(table, x, hue, metric, base_name, plot)


def _against_baseline(grid, runs, baseline, x, hue):
    """(x value, hue value, its runs, the baseline's runs at that hue) for every x value
    the baseline does not select."""
    is_base = select(runs, baseline)
    hv = values(runs, hue) if hue else None
    out = []
    for h in (order(grid, hue, hv) if hue else [None]):
        here = runs.index if h is None else runs.index[hv.map(lambda v, h=h: same_value(v, h))]
        sub, base = runs.loc[here], runs.loc[here][is_base[here]]
        xv = values(sub, x)
        for v in order(grid, x, xv[~is_base[here]]):
            mask = xv.map(lambda z, v=v: same_value(z, v)) & ~is_base[here]
            out.append((v, h, sub[mask], base))
    return out


def _draw(table, x, hue, metric, base_name, plot):
    xs = list(dict.fromkeys(table[x]))
    hues = list(dict.fromkeys(table[hue])) if hue else [None]
    fig, ax = plt.subplots(figsize=(min(12.0, max(5.5, 1.1 * len(table) + 2.5)), 4.5))
    width = 0.5 / max(1, len(hues) - 1) if len(hues) > 1 else 0.0
    for j, h in enumerate(hues):
        part = table if h is None else table[table[hue].map(lambda v, h=h: same_value(v, h))]
        at = np.array([xs.index(v) for v in part[x]]) + (j - (len(hues) - 1) / 2) * width
        bars = err(pd.DataFrame({"mean": part["diff"], "ci95_low": part["ci95_low"],
                                 "ci95_high": part["ci95_high"]}))
        ax.errorbar(at, part["diff"], yerr=bars,
                    fmt="osD^v"[j % 5], ms=7, capsize=5, color=f"C{j % 10}", lw=1.5,
                    label=str(h) if hue else "difference (95% CI)")
    ax.axhline(0.0, ls="--", color="black", lw=1, label="no effect (0)", zorder=1)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs],
                  rotation=30 if sum(len(str(v)) for v in xs) > 40 else 0)
    ax.set_xlim(-0.6, len(xs) - 0.4)
    ax.set_xlabel(key_label(x) if x != "compare" else "compared runs")
    try:
        way = {"lower": "below 0: better", "higher": "above 0: better"}[
            better_of({"metric": metric})]
    except ConfigError:
        way = ""
    ax.set_ylabel(f"difference in {metric_label(metric)}" + (f"\n({way})" if way else ""))
    test = "paired by seed" if (table["test"] == "paired").all() else \
        "paired by seed where the seeds match, else Welch"
    ax.set_title(f"Effect on {metric_label(metric)} against {base_name}\n(mean difference; "
                 f"error bars: 95% CI, {test}, as in the checks)")
    legend(ax, key_label(hue) if hue else None)
    return fig
