"""What every plot kind draws from: the stats table per group, the order of values,
error bars, file names and atomic saving."""
from __future__ import annotations

from .mpl import plt
import numpy as np
import pandas as pd

import os
import re
import tempfile
from pathlib import Path

from transformer.validation import same_value

from .. import store
from .analysis import describe, per_seed
from ..selector import present
from .stats import bootstrap_ci
from .table import GridResults

# Metrics that are fractions: a t interval of seeds near 0 or 1 crosses the bound (heads'
# MQAR accuracy reached 1.5), so their intervals are a percentile bootstrap, clipped
FRACTIONS = ("acc", "exact", "entropy_frac", "mfu", "same_tokens", "distinct", "repetition",
             "diverged")
BOOTSTRAP = "percentile bootstrap over seeds, within [0, 1]"


class SkipPlot(Exception):
    """The plot cannot be drawn from the stored results (the reason says why)."""


def stem(index: int, plot: dict) -> str:
    metric = re.sub(r"[^A-Za-z0-9]+", "_", str(plot.get("metric", "")).replace("@", "_at_"))
    by = "_".join(str(plot[k]).split(".")[-1] for k in ("x", "y", "hue") if plot.get(k))
    parts = [f"{index + 1:02d}", str(plot.get("kind", "plot")), metric.strip("_")]
    return "_".join(p for p in parts if p) + (f"_by_{by}" if by else "")


def save(fig, path: Path, tight: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)       # mkstemp's 0600 would survive savefig and os.replace
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight" if tight else None)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def needs(plot: dict, *keys: str) -> None:
    for k in keys:
        if not plot.get(k):
            raise SkipPlot(f"{plot['kind']} plot needs `{k}:`")


def values(df: pd.DataFrame, key: str) -> pd.Series:
    """The key's value per run; a run without it (arch ignores it) shows its label."""
    return pd.Series([v if present(v) else lab for v, lab in zip(df[key], df["label"])],
                     index=df.index, dtype=object)


def order(grid: GridResults, key: str, values) -> list:
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


def bounds_of(metric: str) -> tuple[float, float] | None:
    """(0, 1) for a metric that is a fraction, else None."""
    base = str(metric).split("@")[0].split("/")[0]
    return (0.0, 1.0) if any(w in base for w in FRACTIONS) else None


def interval(values: pd.Series, metric: str) -> dict:
    """n, mean, std and the 95% interval of per-seed values, with `interval` naming the
    method: Student's t, or for a fraction the clipped bootstrap."""
    s = describe(values)
    row = {"n": s.n, "mean": s.mean, "std": s.std, "ci95_low": s.ci_low,
           "ci95_high": s.ci_high, "interval": "t"}
    bounds = bounds_of(metric)
    if bounds:
        row["ci95_low"], row["ci95_high"] = bootstrap_ci(values, bounds=bounds)
        row["interval"] = "bootstrap"
    return row


def ci_words(table: pd.DataFrame) -> str:
    """What the error bars are, for a plot's subtitle."""
    if "interval" in table and (table["interval"] == "bootstrap").any():
        return f"error bars: 95% {BOOTSTRAP}"
    return "error bars: 95% CI"


def legend(ax, title: str | None = None) -> None:
    """The legend right of the axes, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, fontsize=8, title_fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def stats_table(grid, runs, metric, keys: list[str]) -> pd.DataFrame:
    if metric not in runs.columns:
        raise SkipPlot(f"metric {metric!r} is not in the stored results")
    if runs.empty:
        raise SkipPlot("no runs with a value for " + ", ".join(keys))
    vals = {k: values(runs, k) for k in keys}
    combos = list(dict.fromkeys(zip(*[vals[k] for k in keys])))
    rows = []
    for combo in combos:
        mask = pd.Series(True, index=runs.index)
        for k, v in zip(keys, combo):
            mask &= vals[k].map(lambda h, v=v: same_value(h, v))
        rows.append({**dict(zip(keys, combo)), **interval(per_seed(runs[mask], metric),
                                                          metric)})
    df = pd.DataFrame(rows)
    if df["n"].sum() == 0:
        raise SkipPlot(f"no finite values of {metric}")
    return df


def err(df: pd.DataFrame) -> np.ndarray:
    lo = (df["mean"] - df["ci95_low"]).fillna(0).clip(lower=0)
    hi = (df["ci95_high"] - df["mean"]).fillna(0).clip(lower=0)
    return np.vstack([lo.to_numpy(), hi.to_numpy()])


def settle(x) -> np.ndarray:
    """Numbers rounded to 5 decimals before they are drawn or written: CPUs differ in the
    last bits of sin, exp and matmul, and a regenerated figure must not change with them."""
    return np.round(np.asarray(x, dtype=np.float64), 5)


def write_figure(out: Path, name: str, fig, table: pd.DataFrame, tight: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store.atomic_write_text(out / f"{name}.csv", table.to_csv(index=False, float_format="%.5f"))
    save(fig, out / f"{name}.png", tight)
