"""Selecting runs and the statistics the report rests on (never trains).

Conventions
- An axis value of None means the run's architecture ignores that field (an LSTM has no
  ``model.pos``); the runner lists such a run once for all cells of that axis. A selector
  naming a value on that axis does not match it (so it never dilutes "rope vs none");
  a selector value of null matches exactly those runs.
- Failed runs appear in summary.csv but not in any statistic; diverged runs count in
  every statistic whose value is finite (non-finite values are dropped; `n` counts
  the finite ones).
- Statistics over seeds: mean, sample std (ddof=1), and a two-sided 95% confidence
  interval mean ± t(0.975, n-1)·std/√n. Differences between two groups pair by seed when
  both sides have exactly the same seeds (t on the per-seed differences), Welch's t
  otherwise (see stats.py; scipy is not needed).
"""
from __future__ import annotations


import pandas as pd

from transformer.validation import same_value

from ..selector import describe as describe_selector, matches, present
from .table import GridResults, usable
from .stats import describe, difference, finite


# ----------------------------------------------------------------------- selecting
def select(df: pd.DataFrame, selector: dict | None) -> pd.Series:
    """Rows matching the selector (ablations/selector.py has the rule)."""
    for key in selector or {}:
        if key not in df.columns:
            raise KeyError(f"unknown key {key!r} (columns: {', '.join(map(str, df.columns))})")
    keys = list(selector or {})
    return pd.Series([matches(dict(zip(keys, row)), selector)
                      for row in df[keys].itertuples(index=False, name=None)],
                     index=df.index, dtype=bool)


def split_by(runs: pd.DataFrame, sel: dict) -> list[dict]:
    """One selector per combination of the selector's keys among the runs it matches
    (`each: true`: every value a part of its own); LookupError when none matches."""
    sub = runs[select(runs, sel)]
    if sub.empty:
        raise LookupError(f"no finished runs match {describe_selector(sel)}")
    return _combos(sub, list(sel))


def rivals(runs: pd.DataFrame, sel: dict) -> list[dict]:
    """One selector per combination of the selector's keys among the runs it does not
    match (what `best` compares its selection with)."""
    keys = list(sel)
    return [c for c in _combos(runs.dropna(subset=keys), keys)
            if not matches(c, sel)]


def _combos(runs: pd.DataFrame, keys: list[str]) -> list[dict]:
    rows = runs[keys].astype(object).drop_duplicates().itertuples(index=False, name=None)
    return [dict(zip(keys, row)) for row in rows]


def _slice(df: pd.DataFrame, cell: dict) -> pd.Series:
    """Rows equal to `cell` on its keys, or absent there (a run shared by every cell)."""
    mask = pd.Series(True, index=df.index)
    for key, want in cell.items():
        mask &= df[key].map(lambda h, w=want: not present(h) or same_value(h, w))
    return mask


def per_seed(df: pd.DataFrame, metric: str) -> pd.Series:
    """One value per seed: the mean over the (finite) runs of that seed."""
    vals = finite(df.set_index("seed")[metric]) if len(df) else pd.Series(dtype=float)
    return vals.groupby(level=0).mean()


def aggregate(grid: GridResults, metrics: list[str]) -> pd.DataFrame:
    """Long table: one row per (variant, metric) with n, mean, std, sem and 95% CI."""
    rows = []
    runs = usable(grid.runs)
    for variant in grid.variants:
        sub = runs[runs["label"] == variant]
        if sub.empty:
            continue
        first = sub.iloc[0]
        for metric in metrics:
            if metric not in sub.columns:
                continue
            s = describe(per_seed(sub, metric))
            rows.append({"variant": variant, **{a: first.get(a) for a in grid.axes},
                         "metric": metric, "n": s.n, "mean": s.mean, "std": s.std,
                         "sem": s.sem, "ci95_low": s.ci_low, "ci95_high": s.ci_high})
    return pd.DataFrame(rows)


def baseline_comparisons(grid: GridResults, metrics: list[str]) -> pd.DataFrame:
    """Each variant against the grid's baseline (same values on the axes the baseline
    selector leaves free), paired by seed where possible."""
    base_sel = grid.spec.get("baseline") or {}
    if not base_sel:
        return pd.DataFrame()
    runs = usable(grid.runs)
    base_mask = select(runs, base_sel)
    free = [a for a in grid.axes if a not in base_sel]
    rows = []
    for variant in grid.variants:
        sub = runs[runs["label"] == variant]
        if sub.empty or base_mask[sub.index].all():
            continue
        first = sub.iloc[0]
        cell = {a: first[a] for a in free if present(first.get(a))}
        base = runs[base_mask & _slice(runs, cell)]
        if base.empty:
            continue
        for metric in metrics:
            if metric not in runs.columns:
                continue
            d = difference(per_seed(sub, metric), per_seed(base, metric))
            rows.append({"variant": variant, "baseline": ", ".join(base["label"].unique()),
                         "metric": metric, "n": d.n, "test": "paired" if d.paired else "Welch",
                         "mean": d.a.mean, "baseline_mean": d.b.mean, "diff": d.diff,
                         "ci95_low": d.ci_low, "ci95_high": d.ci_high, "p": d.p})
    return pd.DataFrame(rows)


def primary_metrics(grid: GridResults) -> list[str]:
    """Metrics the spec's checks and plots name (extrapolation: every metric@L);
    without any, the val_* metrics."""
    names: list[str] = []
    for item in (grid.spec.get("checks") or []) + (grid.spec.get("plots") or []):
        m = item.get("metric")
        if not m:
            continue
        if item.get("kind") == "extrapolation":
            names += [c for c in grid.metrics if c == m or c.startswith(m + "@")]
        elif item.get("kind") != "curve" or m in grid.runs.columns:
            names.append(m)
    names = [n for n in dict.fromkeys(names) if n in grid.runs.columns]
    bases = list(dict.fromkeys(n.split("@")[0] for n in names))
    names.sort(key=lambda n: (bases.index(n.split("@")[0]), _length(n)))
    return names or [m for m in grid.metrics if m.startswith("val_")] or grid.metrics[:4]


def _length(metric: str) -> int:
    """The L of metric@L (-1 for a plain metric), for ordering."""
    at = metric.partition("@")[2]
    return int(at) if at.isdigit() else -1
