"""Verdicts: each entry of a grid's `checks:` decides one claim from stored results.

Every check has `claim` (text) and `metric` (a result.json metric or a summary column
such as `diverged`, `params`, `tokens_per_s`), and may have `where: {key: value}` to
restrict the runs first. A selector is {key: value}; a list value means any of.
Each side of a check is reduced to one value per seed (the mean over the side's runs
with that seed), so a side that spans several cells is their average ("main effect").

kind `compare` — `compare: SEL`, `against: SEL`, `better: higher|lower`,
  optional `min_effect: X` (default 0) and `each: true`.
  The effect is compare − against, sign-flipped when lower is better, with a 95% CI:
  paired t on per-seed differences when both sides have the same seeds, Welch otherwise.
  supported      CI of the effect lies entirely above min_effect;
  not_supported  CI entirely below min_effect: below 0 (significant the other way), below
                 a positive min_effect (clearly smaller than claimed), below a negative
                 one (a "no worse than" claim: clearly worse than it allows); or the
                 effect is the same on every seed and not above min_effect (e.g. both
                 sides at 100%);
  inconclusive   otherwise (the CI straddles 0: within seed noise), or fewer than two
                 seeds with a finite value on a side.
  With `each: true` the compare side is split by the values of its selector's keys and
  every part must beat `against` (e.g. "every PE beats no PE").
kind `threshold` — `select: SEL` with `below: X` and/or `above: X`: the 95% CI of the
  mean lies on the claimed side of every bound -> supported; entirely on the wrong side of
  one -> not_supported; else inconclusive (n < 2 is inconclusive).
kind `best` — `best: SEL`, `better`, optional `min_effect`: runs are grouped by the
  values of the selector's keys; the selected group is compared (as above) with every
  other group.
kind `ladder` — `across: size`, `compare`, `against`, `expect`: the trend of the effect
  over a ladder's sizes (report/trend.py has the fit and the rule).
kind `interaction` — `compare`, `against`, `more_in: SEL`, `than_in: SEL`: compare −
  against within more_in minus the same within than_in (report/interaction.py).
kind `trend` — `along: [NAME, ...]` (evaluation names), `better`, optional `select`
  and `min_effect`: metric@NAME should get better from each NAME to the next (e.g.
  distinct_2 rising with temperature); every consecutive pair is judged as a compare.
On a tuned grid (`tune:`) a check reads each variant's runs at its chosen values
(report/tuning.py) unless it says `tuned: false`, and lists under "edge" those it reads
whose choice is the lowest or highest swept value (a metric at initialisation excepted).
A decided verdict whose gap was still closing fast when training stopped lists it under
"closing" (report/budget.py).
Combining parts (each / best): supported when all parts are, not_supported when any is,
else inconclusive. A check whose runs or metric are missing is inconclusive and says why.

Each check also has a p value: a comparison's two-sided t test against min_effect, a
bound's one-sided t test that the mean lies beyond it; a check of several parts takes
the largest (intersection-union: it claims every part). Over a grid's verdicts (every
check not marked `sanity: true`: those hold by construction and are no evidence) the p
values are Holm-Bonferroni adjusted, and a check is supported only when its rule says so
and its adjusted p is below ALPHA; otherwise it is inconclusive and says why.
"""
from __future__ import annotations

import math

import pandas as pd

from ..selector import describe as describe_selector
from .analysis import describe, difference, per_seed, rivals, select, split_by
from .kinds import CHECKS, better_of, check_kind
from .table import GridResults
from .budget import closing
from .tuning import edges, runs_for
from .family import SANITY_WORDS, adjust, number as _number
from .stats import Diff, p_beyond, seeds_needed, t_ppf

# "error": the check could not be evaluated (a metric or selector the stored runs lack):
# a problem of the grid, never a verdict about the claim; `ablate report` exits 1
VERDICTS = ("supported", "not_supported", "inconclusive", "error")


def fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def judge(d: Diff, better: str, min_effect: float = 0.0) -> str:
    if d.n < 2 or not math.isfinite(d.ci_low):
        return "inconclusive"
    lo, hi = (d.ci_low, d.ci_high) if better == "higher" else (-d.ci_high, -d.ci_low)
    if lo > min_effect:
        return "supported"
    if hi < min_effect or (lo == hi and hi <= min_effect):
        return "not_supported"
    return "inconclusive"


def power_note(d: Diff, min_effect: float = 0.0) -> str:
    """For an inconclusive comparison: is it "no effect" or "too few seeds"?"""
    margin = abs(abs(d.diff) - min_effect) if min_effect else abs(d.diff)
    n = seeds_needed(margin, d.spread)
    if n is None:
        return (f" [power: an effect of {fmt(margin)} at a per-seed spread of "
                f"{fmt(d.spread)} needs over 1,000 seeds: no effect worth the name]")
    return (f" [power: resolving an effect of {fmt(margin)} at a per-seed spread of "
            f"{fmt(d.spread)} needs about {n} seeds per side (80% power); there are {d.n}]")


def combine(verdicts: list[str]) -> str:
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    return "not_supported" if "not_supported" in verdicts else "inconclusive"


def side_text(name: str, s) -> str:
    std = f"{s.std:.2g}" if math.isfinite(s.std) else "n/a"
    return f"{name} {fmt(s.mean)} ± {std} (n={s.n})"


def diff_text(a: str, b: str, d: Diff, better: str) -> str:
    test = "paired by seed" if d.paired else "Welch"
    p = f", p={d.p:.2g}" if math.isfinite(d.p) else ""
    return (f"{side_text(a, d.a)} vs {side_text(b, d.b)}; difference {d.diff:+.4g}, "
            f"95% CI [{fmt(d.ci_low)}, {fmt(d.ci_high)}] ({test}{p}; {better} is better)")


def evaluate(check: dict, grid: GridResults) -> dict:
    """One check -> {claim, verdict, evidence, metric, kind, p, seeds_needed} (+ sanity:
    true); its p_holm comes from `evaluate_grid`, which knows the family. seeds_needed:
    per side, for 80% power to find each part's observed effect at its observed spread
    (the largest over the parts; None where no part has an effect worth the name)."""
    claim = str(check.get("claim", "")).strip()
    metric = check.get("metric")
    out = {"claim": claim, "metric": metric}
    if check.get("sanity"):
        out["sanity"] = True
    parts: list[tuple] = []
    try:
        kind = check_kind(check)
        out["kind"] = kind.name
        runs = runs_for(grid, check)
        if not kind.evals and metric not in runs.columns:   # else metric@NAME columns
            raise LookupError(f"metric {metric!r} is not in the stored results")
        runs = runs[select(runs, check.get("where"))]
        if not check.get("sanity") and check.get("tuned") is not False:
            out.update(_edges(grid, check, runs))
        judged = kind.fn(check, runs, metric)
        verdict, evidence = judged[:2]
        # (p, seeds needed) per part; a plugin judge may give bare p values, or none
        parts = [x if isinstance(x, tuple) else (x, None)
                 for x in (judged[2] if len(judged) > 2 else [])]
        out.update(judged[3] if len(judged) > 3 else {})   # e.g. a ladder's trend
        if not check.get("sanity"):
            out.update(closing(grid, check, runs))
    except (KeyError, LookupError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        verdict, evidence = "error", f"cannot evaluate: {msg}."
    ps = [p for p, _ in parts]
    p = max(ps) if ps and all(math.isfinite(x) for x in ps) else math.nan
    needed = [n for _, n in parts if n is not None]
    out.update(verdict=verdict, evidence=f"{metric}: {evidence}", p=_number(p),
               seeds_needed=max(needed) if needed else None)
    return out


def _edges(grid: GridResults, check: dict, runs: pd.DataFrame) -> dict:
    """{"edge": [...]} when a variant the check reads chose a value at the edge of its
    sweep (report/tuning.py): the comparison is then tuned only as far as the sweep
    reaches, and the verdict says so."""
    at_edge = edges(grid)
    if not at_edge or "variant" not in runs.columns or str(check.get("metric")).endswith("@init"):
        return {}       # a metric at initialisation does not depend on the tuned rate
    read = runs
    for keys in (("compare", "against", "select"), ("more_in", "than_in")):
        sels = [check[k] for k in keys if isinstance(check.get(k), dict)]
        if sels:
            mask = pd.Series(False, index=read.index)
            for sel in sels:
                mask |= select(read, sel)
            read = read[mask]
    found = [f"{v}: {', '.join(at_edge[v])}" for v in dict.fromkeys(read["variant"])
             if v in at_edge]
    return {"edge": found} if found else {}


def part_p(d: Diff, better: str, min_eff: float = 0.0) -> float:
    """Two-sided t test of one comparison's effect (sign-flipped when lower is better)
    against min_effect: below 0.05 exactly when the 95% CI excludes it."""
    if not (math.isfinite(d.ci_low) and math.isfinite(d.df)):
        return math.nan
    se = (d.ci_high - d.ci_low) / (2.0 * t_ppf(0.975, d.df))
    return p_beyond(d.diff if better == "higher" else -d.diff, se, d.df, min_eff)


def side(runs: pd.DataFrame, sel: dict, metric: str) -> pd.Series:
    sub = runs[select(runs, sel)]
    if sub.empty:
        raise LookupError(f"no finished runs match {describe_selector(sel)}")
    return per_seed(sub, metric)


def _better(check: dict) -> str:
    better = better_of(check).lower()
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be higher or lower, got {better!r}")
    return better


@CHECKS.register("compare", "compare − against, sign-flipped when lower is better, must "
                 "clear min_effect (each: every value of compare's keys must, separately)",
                 required=("compare", "against"), optional=("min_effect", "each"),
                 selectors=("compare", "against"), numbers=("min_effect",), flags=("each",),
                 directed=True,
                 gaps=lambda check, runs: [(part, check["against"]) for part in (
                     split_by(runs, check["compare"]) if check.get("each")
                     else [check["compare"]])])
def _compare(check: dict, runs: pd.DataFrame, metric: str):
    better, min_eff = _better(check), float(check.get("min_effect", 0.0))
    against = side(runs, check["against"], metric)
    b_name = describe_selector(check["against"])
    parts = [check["compare"]]
    if check.get("each"):
        parts = split_by(runs, check["compare"])
    verdicts, texts, ps = [], [], []
    for sel in parts:
        d = difference(side(runs, sel, metric), against)
        texts.append(judged(d, better, min_eff, verdicts, ps,
                            diff_text(describe_selector(sel), b_name, d, better),
                            arrow=len(parts) > 1))
    return combine(verdicts), _join(texts, min_eff), ps


def judged(d: Diff, better: str, min_eff: float, verdicts: list[str], ps: list[float],
           text: str, arrow: bool = True) -> str:
    """Judge one comparison into `verdicts` (its p value into `ps`); its evidence text,
    with the verdict and, when inconclusive, how many seeds would settle it."""
    verdicts.append(judge(d, better, min_eff))
    margin = abs(abs(d.diff) - min_eff) if min_eff else abs(d.diff)
    ps.append((part_p(d, better, min_eff), seeds_needed(margin, d.spread)))
    return (text + (f" -> {verdicts[-1]}" if arrow else "")
            + (power_note(d, min_eff) if verdicts[-1] == "inconclusive" and d.n >= 2 else ""))


@CHECKS.register("threshold", "the 95% CI of the selected runs' mean lies below and/or "
                 "above a bound", optional=("select", "below", "above"),
                 marks=("below", "above"), one_of=("below", "above"), selectors=("select",),
                 numbers=("below", "above"),
                 gaps=lambda check, runs: [(check.get("select") or {}, float(check[op]))
                                           for op in ("below", "above") if op in check])
def _threshold(check: dict, runs: pd.DataFrame, metric: str):
    sel = check.get("select") or {}
    s = describe(side(runs, sel, metric))
    bounds = [(op, float(check[op])) for op in ("below", "above") if op in check]
    if not bounds:
        raise ValueError("a threshold check needs below: X or above: X")
    verdicts, ps = [], []
    se = s.std / math.sqrt(s.n) if s.n > 1 else math.nan
    for op, x in bounds:
        sign = 1.0 if op == "above" else -1.0           # one-sided: beyond the bound
        ps.append((p_beyond(sign * s.mean, se, s.n - 1, sign * x, sides=1),
                   seeds_needed(abs(s.mean - x), s.std)))
        if s.n < 2:
            verdicts.append("inconclusive")
        elif (s.ci_high < x) if op == "below" else (s.ci_low > x):
            verdicts.append("supported")
        elif (s.ci_low > x) if op == "below" else (s.ci_high < x):
            verdicts.append("not_supported")
        else:
            verdicts.append("inconclusive")
    want = " and ".join(f"{op} {fmt(x)}" for op, x in bounds)
    return combine(verdicts), (f"{side_text(describe_selector(sel), s)}, 95% CI "
                               f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]; claimed {want}."), ps


@CHECKS.register("best", "the selected group beats every other value of its keys",
                 required=("best",), optional=("min_effect",), selectors=("best",),
                 numbers=("min_effect",), directed=True, whole=True,
                 gaps=lambda check, runs: [(check["best"], other)
                                           for other in rivals(runs, check["best"])])
def _best(check: dict, runs: pd.DataFrame, metric: str):
    better, min_eff = _better(check), float(check.get("min_effect", 0.0))
    sel = check["best"]
    chosen = side(runs, sel, metric)
    others = rivals(runs, sel)
    if not others:
        raise LookupError(f"nothing to compare {describe_selector(sel)} with")
    verdicts, texts, ps = [], [], []
    for other in others:
        d = difference(chosen, side(runs, other, metric))
        texts.append(judged(d, better, min_eff, verdicts, ps,
                            f"vs {side_text(describe_selector(other), d.b)}: difference "
                            f"{d.diff:+.4g}, 95% CI [{fmt(d.ci_low)}, {fmt(d.ci_high)}] "
                            f"({'paired' if d.paired else 'Welch'})"))
    head = f"{side_text(describe_selector(sel), describe(chosen))}; {better} is better; "
    return combine(verdicts), head + _join(texts, min_eff), ps


@CHECKS.register("trend", "metric@NAME for each evaluation NAME in `along`, in order: "
                 "every next one is better (per-seed paired differences, each clearing "
                 "min_effect)", required=("along",), optional=("select", "min_effect"),
                 selectors=("select",), numbers=("min_effect",), evals=(("along", 2),),
                 directed=True)
def _trend(check: dict, runs: pd.DataFrame, metric: str):
    better, min_eff = _better(check), float(check.get("min_effect", 0.0))
    sub = runs[select(runs, check.get("select"))]
    if sub.empty:
        raise LookupError(f"no finished runs match {describe_selector(check.get('select'))}")
    cols = [f"{metric}@{name}" for name in check["along"]]
    gone = [c for c in cols if c not in sub.columns]
    if gone:
        raise LookupError(f"metric {gone[0]!r} is not in the stored results")
    verdicts, texts, ps = [], [], []
    for a, b in zip(cols, cols[1:]):
        d = difference(per_seed(sub, b), per_seed(sub, a))
        texts.append(judged(d, better, min_eff, verdicts, ps,
                            f"{a.split('@', 1)[1]} {fmt(d.b.mean)} -> {b.split('@', 1)[1]} "
                            f"{fmt(d.a.mean)}: {d.diff:+.4g}, 95% CI [{fmt(d.ci_low)}, "
                            f"{fmt(d.ci_high)}]"))
    head = f"{better} is better along {', '.join(map(str, check['along']))} (paired by seed); "
    return combine(verdicts), head + _join(texts, min_eff), ps


def _join(texts: list[str], min_eff: float) -> str:
    tail = f" (minimum effect {fmt(min_eff)})" if min_eff else ""
    return "; ".join(texts) + tail + "."


def evaluate_grid(grid: GridResults, only=None) -> list[dict]:
    """Every check of the grid (or those at the indices `only`), the verdicts among them
    Holm-adjusted as one family."""
    checks = grid.spec.get("checks") or []
    return adjust([evaluate(c, grid) for i, c in enumerate(checks)
                   if only is None or i in only])


WORDS = {"supported": "Supported", "not_supported": "Not supported", "error": "Error",
         "inconclusive": "Inconclusive"}


def in_words(v: dict) -> str:
    claim = v["claim"].rstrip(".") + "."
    claim = claim[:1].upper() + claim[1:]
    word = (SANITY_WORDS if v.get("sanity") else WORDS)[v["verdict"]]
    text = f"**{word}.** {claim} *Evidence:* {v['evidence']}"
    if v.get("edge"):
        text += (" *Tuned at the edge of the sweep* (the best value may lie beyond it): "
                 + "; ".join(v["edge"]) + ".")
    if v.get("closing"):
        text += (" *Gap still closing when training stops* (at the pace of its last "
                 "doubling of steps, one more would close it; a longer budget may change "
                 "the verdict): " + "; ".join(v["closing"]) + ".")
    return text
