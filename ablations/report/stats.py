"""Statistics over seeds for the report: Student's t distribution (no scipy needed),
mean / sample std / t confidence interval, and the difference of two groups (paired by
seed when both sides have exactly the same seeds, Welch's t otherwise).

The t distribution comes from the regularised incomplete beta function (continued
fraction, as in Numerical Recipes); quantiles by bisection on the CDF, accurate to
~1e-10, fractional degrees of freedom included (Welch).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import statistics

import numpy as np
import pandas as pd


# ----------------------------------------------------------------------- Student t
def _betacf(a: float, b: float, x: float) -> float:
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for aa in (m * (b - m) * x / ((qam + 2 * m) * (a + 2 * m)),
                   -(a + m) * (qab + m) * x / ((a + 2 * m) * (qap + 2 * m))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t with `df` degrees of freedom (df may be fractional)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_ppf needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if df > 1e7:
        return statistics.NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------- statistics
@dataclasses.dataclass
class Stats:
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @property
    def sem(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 else math.nan


def describe(values, level: float = 0.95) -> Stats:
    """Mean, sample std and t confidence interval of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Stats(0, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(xs)
    if n == 1:
        return Stats(1, mean, math.nan, math.nan, math.nan)
    std = statistics.stdev(xs)
    half = t_ppf(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return Stats(n, mean, std, mean - half, mean + half)


def bootstrap_ci(values, level: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0),
                 draws: int = 10_000) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over the finite values, clipped to
    `bounds`: it stays inside a bounded metric's range where a t interval of seeds at
    0.99 and 1.0 does not. Up to 6 values every one of the n^n resamples is enumerated
    (exact, and a regenerated report never changes); more are drawn from a fixed seed."""
    xs = np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))])
    n = len(xs)
    if n < 2:
        return math.nan, math.nan
    if n <= 6:
        idx = np.array(list(itertools.product(range(n), repeat=n)))
    else:
        idx = np.random.default_rng(0).integers(0, n, (draws, n))
    lo, hi = np.quantile(xs[idx].mean(axis=1), [0.5 - level / 2.0, 0.5 + level / 2.0])
    return float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))


def wilson_ci(fraction: float, count: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion observed over `count` trials: inside [0, 1]
    by construction, and not zero-width at 0 or 1 (for accuracies pooled over evaluated
    examples when their number is known)."""
    if count < 1 or not math.isfinite(fraction):
        return math.nan, math.nan
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
    centre = (fraction + z * z / (2 * count)) / (1 + z * z / count)
    half = z / (1 + z * z / count) * math.sqrt(fraction * (1 - fraction) / count
                                               + z * z / (4 * count * count))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclasses.dataclass
class Diff:
    """compare minus against, with its confidence interval and two-sided p-value."""
    diff: float
    ci_low: float
    ci_high: float
    p: float
    df: float
    paired: bool
    a: Stats
    b: Stats

    @property
    def n(self) -> int:
        return min(self.a.n, self.b.n)

    @property
    def spread(self) -> float:
        """The per-seed standard deviation of the difference (paired), or of the two
        sides together (Welch): what more seeds average away."""
        if not math.isfinite(self.ci_high) or not math.isfinite(self.df):
            return math.nan
        se = (self.ci_high - self.ci_low) / (2.0 * t_ppf(0.975, self.df))
        return se * math.sqrt(self.n)


def seeds_needed(effect: float, spread: float, power: float = 0.8,
                 limit: int = 1000) -> int | None:
    """Seeds per side for a two-sided 95% test to find an effect of this size at this
    per-seed spread with the given power: the smallest n with
    (t(0.975, n-1) + t(power, n-1)) * spread / sqrt(n) <= |effect|. None past `limit`
    (or for no effect at all)."""
    if not (math.isfinite(effect) and math.isfinite(spread)) or effect == 0:
        return None
    if spread == 0:
        return 2
    for n in range(2, limit + 1):
        if (t_ppf(0.975, n - 1) + t_ppf(power, n - 1)) * spread / math.sqrt(n) <= abs(effect):
            return n
    return None


def difference(a: pd.Series, b: pd.Series, level: float = 0.95) -> Diff:
    """Compare per-seed values `a` (index: seed) with `b`: paired when the seed sets
    are identical, Welch otherwise."""
    a, b = finite(a), finite(b)
    sa, sb = describe(a), describe(b)
    paired = len(a) > 1 and set(a.index) == set(b.index)
    if paired:
        d = describe(a - b.reindex(a.index), level)
        se, df = (d.sem, d.n - 1)
        diff = d.mean
    else:
        diff = sa.mean - sb.mean
        if sa.n < 2 or sb.n < 2:
            return Diff(diff, math.nan, math.nan, math.nan, math.nan, False, sa, sb)
        va, vb = sa.std ** 2 / sa.n, sb.std ** 2 / sb.n
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1)) if se > 0 \
            else sa.n + sb.n - 2
    if not math.isfinite(se):
        return Diff(diff, math.nan, math.nan, math.nan, math.nan, paired, sa, sb)
    half = t_ppf(0.5 + level / 2.0, df) * se
    if se > 0:
        p = 2.0 * (1.0 - t_cdf(abs(diff) / se, df))
    else:
        p = 1.0 if diff == 0 else 0.0
    return Diff(diff, diff - half, diff + half, p, df, paired, sa, sb)


def finite(s: pd.Series) -> pd.Series:
    s = pd.to_numeric(s, errors="coerce").astype(float)
    return s[s.map(math.isfinite)]


def p_beyond(diff: float, se: float, df: float, bound: float, sides: int = 2) -> float:
    """The t test's p value of `diff` (standard error `se`) against `bound`: two-sided,
    or with sides=1 for "diff lies above bound". Zero spread (a deterministic count)
    decides outright: 0 when the value is beyond the bound on the tested side, else 1."""
    if not (math.isfinite(diff) and math.isfinite(se) and math.isfinite(df)):
        return math.nan
    if se == 0:
        beyond = diff > bound if sides == 1 else diff != bound
        return 0.0 if beyond else 1.0
    t = (diff - bound) / se
    return 1.0 - t_cdf(t, df) if sides == 1 else 2.0 * (1.0 - t_cdf(abs(t), df))


def holm(ps: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p values, in the given order: the i-th smallest p times
    (m - i), made monotone, capped at 1. A missing p (NaN) counts as 1: a check that
    could not be tested can never be the reason another one passes."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i] if math.isfinite(ps[i]) else 2.0)
    out, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        p = ps[i] if math.isfinite(ps[i]) else 1.0
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
