"""Is a decided verdict's gap still closing when training stops?

A verdict read at the end of a fixed budget holds for that budget. When the gap between
its two sides is still shrinking as training stops, a longer run may close or reverse it:
the "budget too small" behind many surprising ablation results. So, for every gap a check
judges at the end of training (its kind's `gaps`: compare − against, per part with
`each`; best − every rival; per size on a ladder; a threshold's mean − its bound), this
reads the learning curves in metrics.csv:

- the curve of the check's metric, or for a `test_` metric (measured once, at the end)
  its `val_` twin, logged during training;
- each run at the evaluation nearest half its steps and at its last one (each run at its
  own steps, so sides trained for different budgets, e.g. at equal FLOPs, still pair);
- each side averaged per seed (as the verdict does), the gap per seed, then its mean over
  the seeds both sides have.

The gap is *closing* when one more doubling of the steps, changing it as much as the last
doubling did, would bring it to zero or past: the gap moved toward zero and
|end − half| >= |end|. Doublings rather than steps, because learning curves are roughly
linear in log steps. It is a caution, not a verdict: the check's verdict stands, and its
text says which gap is closing, from what to what, so a reader can lengthen the budget.
Only decided verdicts (supported, not supported) carry it (family.py decides after Holm).
A check on a metric without a curve (a timing, metric@NAME evaluated after training) or
on runs too short to have an evaluation near half their steps gets no caution, which is
no evidence either way.
"""
from __future__ import annotations

import math

import pandas as pd

from ..selector import describe as describe_selector
from .analysis import select
from .kinds import check_kind
from .table import GridResults, load_curves

HALF = (0.35, 0.65)       # the "half" evaluation must lie in this fraction of the steps


def closing(grid: GridResults, check: dict, runs: pd.DataFrame) -> dict:
    """{"closing": [text, ...]} for the check's gaps that are still closing, else {}."""
    gaps = check_kind(check).gaps
    if gaps is None or "@" in str(check.get("metric")):
        return {}       # an evaluation after training (metric@NAME) has no curve
    curve = _curve_metric(grid, check["metric"], runs)
    ends = _ends(grid, curve, runs) if curve else pd.DataFrame()
    found = []
    for a_sel, b_sel in (gaps(check, runs) if not ends.empty else []):
        gap = _gap(ends, runs, a_sel, b_sel)
        if gap is not None and _is_closing(gap[0], gap[1]):
            half, end, steps = gap
            against = (describe_selector(b_sel) if isinstance(b_sel, dict)
                       else f"the bound {b_sel:g}")
            found.append(f"{describe_selector(a_sel)} − {against}: "
                         f"{curve} {half:+.3g} at half the steps -> {end:+.3g} at the "
                         f"last ({' and '.join(f'{n:,}' for n in steps)} steps)")
    return {"closing": found} if found else {}


def _is_closing(half: float, end: float) -> bool:
    """Moving toward zero, and one more change like the last would reach it."""
    return (half - end) * end > 0 and abs(half - end) >= abs(end)


def _curve_metric(grid: GridResults, metric: str, runs: pd.DataFrame) -> str | None:
    """The metric if metrics.csv logs it during training, else its val_ twin if that is
    logged, else None (a test_ metric is logged once, at the end)."""
    names = [metric] + (["val_" + metric[len("test_"):]] if metric.startswith("test_") else [])
    probe = runs.head(1)
    for name in names:
        if load_curves(grid, name, probe)["step"].nunique() > 1:
            return name
    return None


def _ends(grid: GridResults, metric: str, runs: pd.DataFrame) -> pd.DataFrame:
    """run_id -> (half, end, s_end): each run's curve at the evaluation nearest half its
    last step s_end, and at s_end; runs without both are left out."""
    curves = load_curves(grid, metric, runs)
    curves = curves[curves["value"].map(lambda v: math.isfinite(float(v)))]
    rows = {}
    for run_id, c in curves.groupby("run_id", sort=False):
        c = c.sort_values("step")
        last = int(c["step"].iloc[-1])
        mid = c.iloc[(c["step"] - last / 2).abs().argsort().iloc[0]]
        if last > 0 and HALF[0] <= mid["step"] / last <= HALF[1]:
            rows[run_id] = (float(mid["value"]), float(c["value"].iloc[-1]), last)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["half", "end", "s_end"])


def _gap(ends: pd.DataFrame, runs: pd.DataFrame, a_sel: dict, b_sel):
    """(mean gap at half the steps, at the last, [the runs' last steps]) over the seeds
    both sides have, or None. b_sel may be a number: a bound (threshold checks), the
    same at both points."""
    a = _side(ends, runs, a_sel)
    if a is None:
        return None
    if isinstance(b_sel, dict):
        b = _side(ends, runs, b_sel)
        if b is None:
            return None
        seeds = a[0].index.intersection(b[0].index)
        gap, steps = a[0].loc[seeds] - b[0].loc[seeds], a[1] + b[1]
    else:
        gap, steps = a[0] - float(b_sel), a[1]
    if gap.empty:
        return None
    return float(gap["half"].mean()), float(gap["end"].mean()), sorted(set(steps))


def _side(ends: pd.DataFrame, runs: pd.DataFrame, sel: dict):
    """(seed -> mean half and end over the side's runs, the runs' last steps), or None."""
    sub = runs[select(runs, sel)]
    sub = sub[sub["run_id"].isin(ends.index)]
    if sub.empty:
        return None
    at = ends.loc[sub["run_id"]]
    per_seed = at[["half", "end"]].assign(seed=sub["seed"].to_numpy()).groupby("seed").mean()
    return per_seed, [int(n) for n in at["s_end"]]
