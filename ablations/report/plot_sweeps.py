"""Plots over swept settings: a metric against a tuned setting (`tune`), and quality
against diversity over a grid's evaluations (`frontier`)."""
from __future__ import annotations

import pandas as pd

from .analysis import per_seed
from .kinds import PLOTS
from .labels import key_label, metric_label
from .mpl import plt
from .plot_data import BOOTSTRAP, SkipPlot, bounds_of, ci_words, interval, legend, order
from .plot_lines import dodge, line, use_logx
from .tuning import SELECT_BY, scores, sweep, tune_keys


@PLOTS.register("tune", "metric against a tuned setting (x: default the first `tune:` "
                "key), one line per variant, each variant's chosen value starred; error "
                "bars = 95% CI", optional=("x", "hue"), axes=("x", "hue"))
def tune(grid, runs, plot):
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
    hues = order(grid, hue, table[hue])
    every = [v for v in table[x] if isinstance(v, (int, float))]
    for j, h in enumerate(hues):
        pick = chosen[chosen["variant"] == h] if hue == "variant" else chosen.iloc[:0]
        row = table[(table[hue] == h) & table[x].isin(pick[x].tolist())] if len(pick) else None
        if row is not None and len(row):      # on the nudged point its line is drawn through
            at = dodge(row[x].astype(float), j, len(hues), every,
                       use_logx(every, {"logx": plot.get("logx", True)}))
            ax.scatter(at, row["mean"], marker="*", s=160, zorder=4,
                       color=f"C{j}", edgecolor="black",
                       label="chosen (lowest val_loss)" if j == 0 else None)
    legend(ax, key_label(hue))
    ax.set_title(f"{metric_label(metric)} vs {key_label(x)}, every swept value\n(mean over "
                 f"seeds; {ci_words(table)}; star: each variant's chosen value)")
    return table, fig


@PLOTS.register("frontier", "one point per evaluation NAME in `evals` (default: every one "
                "with both metrics): metric@NAME against diversity@NAME, error bars = 95% "
                "CI, the Pareto front dashed", required=("diversity",), optional=("evals",),
                evals=(("evals", 1),))
def frontier(grid, runs, plot):
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
        sx, sy = (interval(per_seed(runs, f"{m}@{name}"), m) for m in (x, y))
        rows.append({"evaluation": name, "n": sx["n"], x: sx["mean"], f"{x}_std": sx["std"],
                     f"{x}_ci95_low": sx["ci95_low"], f"{x}_ci95_high": sx["ci95_high"],
                     f"{x}_interval": sx["interval"], y: sy["mean"], f"{y}_std": sy["std"],
                     f"{y}_ci95_low": sy["ci95_low"], f"{y}_ci95_high": sy["ci95_high"],
                     f"{y}_interval": sy["interval"]})
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
    legend(ax)
    boot = [m for m in (x, y) if bounds_of(m)]
    how = f"; {', '.join(boot)}: {BOOTSTRAP}" if boot else ""
    ax.set_title(f"Quality vs diversity per evaluation\n(mean over seeds; error bars: "
                 f"95% CI{how})")
    return table, fig
