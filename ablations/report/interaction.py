"""The `interaction` check: does one change matter more in one setting than in another?

"Post-LN needs warmup and Pre-LN does not" is not two claims but one about a difference
of differences: warmup's effect under Post-LN minus its effect under Pre-LN. Checking
each effect on its own cannot say it (warmup may help both), so the check tests the
interaction itself:

    {claim: ..., metric: test_loss, better: higher, compare: {train.warmup: 0},
     against: {train.warmup: 50}, more_in: {model.norm_placement: post},
     than_in: {model.norm_placement: pre}}

- Four cells: compare and against, each within more_in and within than_in (and `where`).
  On a tuned grid each cell is read at its own best tuned value (report/tuning.py), as
  every check is unless it says `tuned: false`.
- Per seed, the effect within a setting is compare − against on that seed (the seeds
  both cells have). The interaction is the effect within more_in minus the effect
  within than_in, compared exactly as the compare check compares its two sides
  (stats.difference: paired t on the per-seed differences of differences when both
  settings have the same seeds, Welch otherwise), with its 95% CI.
- `better` and `min_effect` mean what they mean for compare: the interaction is
  sign-flipped when lower is better, so a positive value says compare's advantage over
  against (by the metric's own direction) is larger within more_in than within than_in.
  Supported when the CI lies above min_effect (default 0); not supported when it lies
  below 0 (the effect is larger in than_in: the wrong sign), or below a positive
  min_effect; inconclusive when it straddles 0 (then the evidence says how many seeds
  would settle it). Its p (a two-sided t test against min_effect) enters the grid's
  Holm family like any verdict's.
- Validation, before anything runs: compare and against select different cells, so do
  more_in and than_in, and the two pairs select by different keys (else a cell is
  empty or counted on both sides).
"""
from __future__ import annotations

import pandas as pd

from transformer.validation import ConfigError

from ..selector import describe as describe_selector
from .analysis import select
from .kinds import CHECKS, better_of
from .stats import Diff, difference
from .verdicts import fmt, judged, side

CHANGE, SETTING = ("compare", "against"), ("more_in", "than_in")


def _validate(where: str, check: dict) -> None:
    sels = {k: check.get(k) for k in CHANGE + SETTING}
    if not all(isinstance(s, dict) and s for s in sels.values()):
        return                                   # the selector check names the bad one
    for a, b in (CHANGE, SETTING):
        if sels[a] == sels[b]:
            raise ConfigError(f"{where}.{b}", f"selects what {a} selects ({sels[a]}): the "
                              "interaction would be 0 by construction")
    changed = {k for key in CHANGE for k in sels[key]}
    for key in SETTING:
        shared = sorted(changed & set(sels[key]))
        if shared:
            raise ConfigError(f"{where}.{key}", f"selects by {shared[0]}, which compare/"
                              "against already select by: the setting and the change "
                              "must be different keys")


def within(runs: pd.DataFrame, check: dict, setting: dict, metric: str) -> tuple:
    """(per-seed compare − against within `setting`, Diff of the two cells)."""
    here = runs[select(runs, setting)]
    where = f" within {describe_selector(setting)}"
    try:
        a, b = side(here, check["compare"], metric), side(here, check["against"], metric)
    except LookupError as e:
        raise LookupError(e.args[0] + where) from None
    return (a - b).dropna(), difference(a, b)


def _effect_text(name: str, d: Diff) -> str:
    return (f"within {name} {d.diff:+.4g}, 95% CI [{fmt(d.ci_low)}, {fmt(d.ci_high)}] "
            f"(n={d.n}, {'paired' if d.paired else 'Welch'})")


@CHECKS.register("interaction", "difference of differences: (compare − against within "
                 "more_in) − (compare − against within than_in), each cell at its own "
                 "tuned value, sign-flipped when lower is better, must clear min_effect "
                 "(paired by seed where the seeds match, Welch otherwise)",
                 required=("more_in", "than_in", "compare", "against"),
                 optional=("min_effect",), marks=SETTING, selectors=CHANGE + SETTING,
                 factors=(CHANGE, SETTING), numbers=("min_effect",), directed=True,
                 validate=_validate)
def _interaction(check: dict, runs: pd.DataFrame, metric: str):
    better, min_eff = better_of(check), float(check.get("min_effect", 0.0))
    more, than = describe_selector(check["more_in"]), describe_selector(check["than_in"])
    (a, d_more), (b, d_than) = (within(runs, check, check[k], metric) for k in SETTING)
    d = difference(a, b)
    verdicts, ps = [], []
    text = (f"effect of {describe_selector(check['compare'])} over "
            f"{describe_selector(check['against'])} ({better} is better): "
            f"{_effect_text(more, d_more)}; {_effect_text(than, d_than)}; interaction "
            f"({more} − {than}) {d.diff:+.4g}, 95% CI [{fmt(d.ci_low)}, {fmt(d.ci_high)}] "
            f"(n={d.n}, {'paired by seed' if d.paired else 'Welch'}"
            f"{f', p={d.p:.2g}' if d.p == d.p else ''})")
    text = judged(d, better, min_eff, verdicts, ps, text, arrow=False)
    tail = f" (minimum effect {fmt(min_eff)})" if min_eff else ""
    return verdicts[0], text + tail + ".", ps
