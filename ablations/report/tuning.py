"""Tuned comparisons: each variant at its own best value of the grid's `tune:` settings.

A fixed learning rate favours whichever variant it happens to suit, so a tuned grid
trains every cell at each swept value and compares the cells each at its best one.

- The choice is made on the validation split: the value whose runs have the lowest mean
  final `val_loss` over seeds. The checks and plots of a tuned grid then read the runs
  at that value (`tuned: false` reads every run), and the claims are stated on the test
  split (`test_*` metrics, scored once on the final weights and never used to choose),
  so the choice cannot flatter the winner.
- A run that diverged, or ended worse than it started, scores its loss at
  initialisation L0 (Wortsman et al. 2023 clip at L0 the same way).
- LR sensitivity (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer
  training instabilities"): the mean over the swept values v of min(L(v), L0) - L*,
  where L(v) is the mean final validation loss at v and L* the best of them. 0 means
  every swept value is as good as the best; large means the variant needs its rate.
- A choice at the edge of its sweep (the lowest or highest swept value of a numeric
  setting) is the best value swept, not necessarily the best: the optimum may lie
  beyond. The tuned table and every verdict that reads such a variant say so, so a
  grid whose sweep is too narrow cannot pass its comparisons off as tuned.
"""
from __future__ import annotations

import math
import numbers

import pandas as pd

from transformer.validation import ConfigError, same_value

from .. import store
from ..selector import present
from .table import GridResults, load, logged_value, usable

SELECT_BY = "val_loss"          # every trained run has it; lower is better


def tune_keys(spec: dict) -> list[str]:
    """The tuned settings of the grid and of its experiments, in spec order."""
    keys = list((spec.get("tune") or {}).keys())
    for part in (spec.get("experiments") or {}).values():
        keys += list(((part or {}).get("tune") or {}).keys())
    return list(dict.fromkeys(keys))


def is_tuned(grid: GridResults) -> bool:
    return bool(tune_keys(grid.spec))


def scores(grid: GridResults, runs: pd.DataFrame) -> pd.Series:
    """Per run: its final val_loss clipped at its loss at initialisation (L0); a diverged
    run, or one without a finite val_loss, scores L0."""
    out = {}
    for idx, row in runs.iterrows():
        l0 = logged_value(grid, row["run_id"], SELECT_BY + "@init")
        v = row.get(SELECT_BY, math.nan)
        finite = isinstance(v, (int, float)) and math.isfinite(v)
        if row["status"] == "diverged" or not finite:
            v = l0
        elif math.isfinite(l0):
            v = min(v, l0)
        out[idx] = v
    return pd.Series(out, dtype=float)


def sweep(grid: GridResults) -> pd.DataFrame:
    """One row per (variant, tuned values): runs, diverged runs, mean score over seeds,
    and whether it is the variant's best. Computed once per loaded grid: every check and
    plot of a tuned grid reads it, and scoring reads each run's metrics.csv."""
    if "sweep" not in grid.memo:
        grid.memo["sweep"] = _sweep(grid)
    return grid.memo["sweep"]


def _sweep(grid: GridResults) -> pd.DataFrame:
    keys = [k for k in tune_keys(grid.spec) if k in grid.runs.columns]
    runs = usable(grid.runs)
    if not keys or runs.empty:
        return pd.DataFrame()
    runs = runs.assign(_score=scores(grid, runs))
    rows = []
    for variant, sub in runs.groupby("variant", sort=False):
        for combo, part in sub.groupby(keys, sort=False, dropna=False):
            combo = combo if isinstance(combo, tuple) else (combo,)
            per_seed = part.groupby("seed")["_score"].mean()
            rows.append({"variant": variant, **dict(zip(keys, combo)), "n": len(per_seed),
                         "diverged": int(part["diverged"].sum()),
                         "score": float(per_seed.mean()) if len(per_seed) else math.nan})
    table = pd.DataFrame(rows)
    # the first lowest score of each variant (a variant with no finite score has none)
    best = table.dropna(subset=["score"]).groupby("variant", sort=False)["score"].idxmin()
    return table.assign(best=table.index.isin(best))


def tuned_runs(grid: GridResults, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The runs at each variant's best tuned values, labelled by the variant (so tables
    and plots group its seeds); a grid that tunes nothing gives its runs unchanged."""
    runs = usable(grid.runs) if runs is None else runs
    table = sweep(grid)
    if table.empty:
        return runs
    keys = [k for k in tune_keys(grid.spec) if k in grid.runs.columns]
    best = table[table["best"]]
    keep = pd.Series(False, index=runs.index)
    for _, b in best.iterrows():
        mask = runs["variant"] == b["variant"]
        for k in keys:
            mask &= runs[k].map(lambda v, w=b[k]: (not present(v) and not present(w))
                                or (present(v) and present(w) and same_value(v, w)))
        keep |= mask
    return runs[keep].assign(label=runs.loc[keep, "variant"])


def sensitivity(grid: GridResults) -> pd.DataFrame:
    """Per variant: its best tuned values, L* (best mean score), the LR sensitivity
    (mean of score - L* over the swept values) and how many swept runs diverged."""
    table = sweep(grid)
    if table.empty:
        return pd.DataFrame()
    keys = [k for k in tune_keys(grid.spec) if k in table.columns]
    rows = []
    for variant, sub in table.groupby("variant", sort=False):
        best = sub[sub["best"]]
        star = float(best["score"].iloc[0]) if len(best) else math.nan
        rows.append({"variant": variant,
                     **{k: (best[k].iloc[0] if len(best) else math.nan) for k in keys},
                     "best_val_loss": star,
                     "sensitivity": float((sub["score"] - star).mean()),
                     "swept": len(sub), "diverged": int(sub["diverged"].sum()),
                     "runs": int(sub["n"].sum())})
    return pd.DataFrame(rows)


def edges(grid: GridResults) -> dict[str, list[str]]:
    """variant -> its choices at the edge of their sweep, in words ("train.lr 0.01, the
    highest swept"); variants whose choices are all inside their sweep are absent. Only
    numeric settings with at least two swept values have edges."""
    table = sweep(grid)
    if table.empty:
        return {}
    keys = [k for k in tune_keys(grid.spec) if k in table.columns]
    out: dict[str, list[str]] = {}
    for variant, sub in table.groupby("variant", sort=False):
        best = sub[sub["best"]]
        if best.empty:
            continue
        for k in keys:
            values = sorted({v for v in sub[k] if _number(v)})
            pick = best[k].iloc[0]
            if len(values) < 2 or not _number(pick):
                continue
            where = "lowest" if pick == values[0] else "highest" if pick == values[-1] else ""
            if where:
                out.setdefault(variant, []).append(f"{k} {pick:g}, the {where} swept")
    return out


def _number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def runs_for(grid: GridResults, item: dict) -> pd.DataFrame:
    """The runs a check or plot reads: on a tuned grid each variant at its chosen values
    unless the item says `tuned: false` (a `tune` plot reads every run)."""
    if not is_tuned(grid) or item.get("kind") == "tune" or item.get("tuned") is False:
        return usable(grid.runs)
    return tuned_runs(grid)


def chosen(gdir, name: str) -> dict:
    """variant -> {tuned key: value}: each variant's choice on a tuned grid's stored
    results (what a replication reruns, and which run the explorer shows). ConfigError
    when the folder has no finished sweep."""
    try:
        grid = load(gdir) if (gdir / store.MANIFEST).is_file() else None
        swept = sweep(grid) if grid is not None else None
    except store.Unreadable as e:
        raise ConfigError("replicate", f"cannot read the original results: {e}") from None
    if swept is None or swept.empty:
        raise ConfigError("replicate", f"a tuned grid is replicated (and explored) at each "
                          f"variant's chosen values, read from its results, and {gdir} has "
                          f"none: run {name} first, or set replicate.retune: true")
    keys = [k for k in tune_keys(grid.spec) if k in swept.columns]
    best = swept[swept["best"]]
    return {row["variant"]: {k: _plain(row[k]) for k in keys} for _, row in best.iterrows()}


def _plain(value):
    return value.item() if hasattr(value, "item") else value
