"""Scale trends: does an effect grow, shrink, hold or flip as the model grows?

A grid's `ladder:` trains its cells at several model sizes (grid/ladder.py). A `ladder`
check compares two selections at each size, each variant at its own best tuned value
(its variant label includes the size, so tuning chooses per size), and names the trend:

    {claim: ..., metric: test_loss, better: lower, compare: {model.ffn: swiglu},
     against: {model.ffn: gelu}, across: size, expect: [holds, grows]}

- The effect at each size is compare − against, sign-flipped when lower is better (so
  positive means compare is better), with its 95% CI: paired t by seed, Welch otherwise
  (stats.difference).
- The slope is the effect's change per tenfold of non-embedding parameters N_s: ordinary
  least squares of the per-seed effects (compare − against on the same seed, at every
  size) on log10(N_s), its standard error from the residuals and its 95% CI from Student's
  t with n − 2 degrees of freedom (n per-seed effects). Per-seed points rather than one
  mean per size give the fit the seed noise's own degrees of freedom: with three sizes a
  fit of three means would have one. Seeds of different sizes are different models; a
  seed shares its batches across sizes, which this treats as independent.
- The trend, in this order: *flips* when one size's effect CI lies above 0 and another's
  below; *grows* when the slope CI excludes 0 on the side of the effect's sign (the mean
  effect over sizes), *shrinks* when on the other; *holds* when the slope CI includes 0
  and every size's effect CI excludes 0 on the same side; else *inconclusive*.
- The verdict: supported when the trend is one `expect` names; inconclusive when it is
  undetermined, or is "holds" while a slope was expected (no slope resolved is not a
  slope against); not supported otherwise.
- Its p for Holm (family.py): a slope's two-sided t test where the trend found (or, when
  none is found, expected) is grows or shrinks; for holds the largest of the sizes'
  effect p values (intersection-union: it claims every size); for flips the larger of the
  two opposite sizes'.
"""
from __future__ import annotations

import dataclasses
import math

import pandas as pd

from ..selector import describe as describe_selector
from .analysis import per_seed, select
from .family import number
from .kinds import CHECKS, better_of
from .stats import Diff, difference, finite, p_beyond, seeds_needed, t_cdf, t_ppf

TRENDS = ("grows", "shrinks", "holds", "flips")
SLOPED = ("grows", "shrinks")


@dataclasses.dataclass
class Fit:
    """y = intercept + slope * x by ordinary least squares, with the slope's 95% CI."""
    slope: float
    intercept: float
    se: float
    df: int
    ci_low: float
    ci_high: float
    p: float
    n: int


def fit_slope(xs, ys, level: float = 0.95) -> Fit:
    """OLS of ys on xs; NaN statistics where fewer than 3 points or one x."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys)
           if math.isfinite(float(x)) and math.isfinite(float(y))]
    n = len(pts)
    nan = Fit(math.nan, math.nan, math.nan, max(0, n - 2), math.nan, math.nan, math.nan, n)
    if n < 3:
        return nan
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return nan
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    intercept = my - slope * mx
    sse = sum((y - intercept - slope * x) ** 2 for x, y in pts)
    se = math.sqrt(sse / (n - 2) / sxx)
    half = t_ppf(0.5 + level / 2.0, n - 2) * se
    if se > 0:
        p = 2.0 * (1.0 - t_cdf(abs(slope) / se, n - 2))
    else:                              # points on a line: decided outright
        p = 0.0 if slope != 0 else 1.0
    return Fit(slope, intercept, se, n - 2, slope - half, slope + half, p, n)


@dataclasses.dataclass
class SizeEffect:
    size: str
    params: float              # N_s, the size's mean non-embedding parameters
    diff: Diff                 # compare − against as measured
    gain: float                # sign-flipped when lower is better: > 0, compare better
    ci_low: float
    ci_high: float


def classify(effects: list[SizeEffect], fit: Fit) -> str:
    """One of TRENDS, or 'inconclusive' (the module docstring has the rule)."""
    above = [e for e in effects if e.ci_low > 0]
    below = [e for e in effects if e.ci_high < 0]
    if above and below:
        return "flips"
    if math.isfinite(fit.ci_low) and (fit.ci_low > 0 or fit.ci_high < 0):
        sign = sum(e.gain for e in effects if math.isfinite(e.gain))
        if sign == 0:
            return "inconclusive"
        return "grows" if (fit.slope > 0) == (sign > 0) else "shrinks"
    if effects and (len(above) == len(effects) or len(below) == len(effects)):
        return "holds"
    return "inconclusive"


def verdict_of(trend: str, expect: list[str]) -> str:
    if trend in expect:
        return "supported"
    if trend == "inconclusive" or (trend == "holds" and set(expect) & set(SLOPED)):
        return "inconclusive"
    return "not_supported"


def size_effects(runs: pd.DataFrame, check: dict, metric: str, better: str):
    """Per size (smallest N_s first): the SizeEffect, and the per-seed points
    (log10 N_s, gain) for the fit."""
    if "size" not in runs.columns or "size_params" not in runs.columns:
        raise LookupError("the stored runs have no ladder sizes (run the grid's ladder)")
    sign = 1.0 if better == "higher" else -1.0
    effects, points = [], []
    sizes = runs.dropna(subset=["size"]).groupby("size", sort=False)["size_params"].first()
    for size, n in sorted(sizes.items(), key=lambda kv: float(kv[1])):
        here = runs[runs["size"] == size]
        a = per_seed(here[select(here, check["compare"])], metric)
        b = per_seed(here[select(here, check["against"])], metric)
        if finite(a).empty or finite(b).empty:
            continue
        d = difference(a, b)
        lo, hi = sorted((sign * d.ci_low, sign * d.ci_high))
        effects.append(SizeEffect(str(size), float(n), d, sign * d.diff, lo, hi))
        shared = finite(a).index.intersection(finite(b).index)
        points += [(math.log10(float(n)), sign * (a[s] - b[s])) for s in shared]
    if not effects:
        raise LookupError(f"no size has finished runs on both sides "
                          f"({describe_selector(check['compare'])} and "
                          f"{describe_selector(check['against'])})")
    return effects, points


def _part(d: Diff) -> tuple[float, int | None]:
    """A size's two-sided p against 0, and the seeds that would resolve it."""
    if not (math.isfinite(d.ci_low) and math.isfinite(d.df)):
        return math.nan, None
    se = (d.ci_high - d.ci_low) / (2.0 * t_ppf(0.975, d.df))
    return p_beyond(d.diff, se, d.df, 0.0), seeds_needed(abs(d.diff), d.spread)


def parts_of(trend: str, expect: list[str], effects: list[SizeEffect], fit: Fit,
             seeds: int) -> list[tuple]:
    """(p, seeds needed) of the test behind the trend found (the expected one's when
    none is found): see the module docstring."""
    if trend in SLOPED or (trend == "inconclusive" and set(expect) & set(SLOPED)):
        spread = fit.se * math.sqrt(max(1, seeds)) if math.isfinite(fit.se) else math.nan
        return [(fit.p, seeds_needed(fit.slope, spread))]
    if trend == "flips":
        ends = [max(effects, key=lambda e: e.ci_low), min(effects, key=lambda e: e.ci_high)]
        return [_part(e.diff) for e in ends]
    return [_part(e.diff) for e in effects]


def fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:+.2e}"


@CHECKS.register("ladder", "compare − against at each ladder size (each at its own best "
                 "tuned value), and its slope against log10 of the non-embedding "
                 "parameters with a 95% CI: the trend (grows, shrinks, holds, flips) must "
                 "be one that `expect` names", required=("across", "compare", "against",
                                                         "expect"),
                 marks=("across",), selectors=("compare", "against"),
                 choices=(("across", ("size",)), ("expect", TRENDS)), directed=True,
                 ladder=True, gaps=lambda check, runs: [
                     ({"size": size, **check["compare"]}, {"size": size, **check["against"]})
                     for size in runs["size"].dropna().unique()])
def _ladder(check: dict, runs: pd.DataFrame, metric: str):
    better = better_of(check)
    expect = check["expect"] if isinstance(check["expect"], list) else [check["expect"]]
    effects, points = size_effects(runs, check, metric, better)
    fit = fit_slope(*zip(*points)) if points else fit_slope([], [])
    trend = classify(effects, fit)
    verdict = verdict_of(trend, expect)
    seeds = max((e.diff.n for e in effects), default=0)
    parts = parts_of(trend, expect, effects, fit, seeds)
    each = "; ".join(f"{e.size} (N={e.params:,.0f}) {fmt(e.gain)} [{fmt(e.ci_low)}, "
                     f"{fmt(e.ci_high)}] (n={e.diff.n}, "
                     f"{'paired' if e.diff.paired else 'Welch'})" for e in effects)
    p = f", p={fit.p:.2g}" if math.isfinite(fit.p) else ""
    evidence = (f"trend: {trend} (expected {' or '.join(expect)}). Effect of "
                f"{describe_selector(check['compare'])} over "
                f"{describe_selector(check['against'])} ({better} is better; positive: "
                f"compare better), 95% CI, per size: {each}. Slope {fmt(fit.slope)} per "
                f"10x parameters, 95% CI [{fmt(fit.ci_low)}, {fmt(fit.ci_high)}] (OLS of "
                f"{fit.n} per-seed effects on log10 N, t with {fit.df} df{p}).")
    if verdict == "inconclusive" and parts and parts[0][1]:
        evidence += f" [power: about {max(n for _, n in parts if n)} seeds per size " \
                    "would resolve it]"
    extra = {"trend": trend, "slope": number(fit.slope),
             "slope_ci": [number(fit.ci_low), number(fit.ci_high)],
             "sizes": [{"size": e.size, "params": number(e.params), "effect": number(e.gain),
                        "ci_low": number(e.ci_low), "ci_high": number(e.ci_high),
                        "n": e.diff.n} for e in effects]}
    return verdict, evidence, parts, extra
