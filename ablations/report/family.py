"""Which checks are verdicts, and the correction that holds them to one error rate.

A check marked `sanity: true` in its grid has an outcome fixed by construction (a
deterministic count, a formula, a model that cannot see the information, an equality the
code guarantees): it tests the implementation, not the claim, so it is shown apart and
counted nowhere. The other checks of a grid are its family of verdicts: their p values
are Holm-Bonferroni adjusted together (Holm 1979), so that the chance of calling any
true null "supported" stays below ALPHA for the grid as a whole, whatever the number of
checks.
"""
from __future__ import annotations

import math

from .stats import holm

ALPHA = 0.05
DECIDED = ("supported", "not_supported")      # the verdicts that say something
# a sanity check's outcome in words: it either holds or points at a bug
SANITY_WORDS = {"supported": "Holds", "not_supported": "Does not hold (a bug?)",
                "inconclusive": "Not shown", "error": "Cannot be evaluated"}


def number(x: float | None) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None


def fmt_p(p: float | None) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.2g}"


def verdicts_only(judged: list[dict]) -> list[dict]:
    """The entries of a verdicts.json that are verdicts (not sanity checks)."""
    return [v for v in judged if not v.get("sanity")]


def adjust(judged: list[dict]) -> list[dict]:
    """Holm over the checks that are not sanity checks (in place, and returned); a
    supported verdict whose adjusted p is not below ALPHA becomes inconclusive, and its
    evidence says so."""
    family = verdicts_only(judged)
    raw = [math.nan if v.get("p") is None else v["p"] for v in family]
    for v, p_holm in zip(family, holm(raw)):
        v["p_holm"] = number(p_holm)
        if v["verdict"] == "supported" and not p_holm < ALPHA:
            v["verdict"] = "inconclusive"
            v["evidence"] = (v["evidence"].rstrip() + " Not significant after Holm "
                             f"correction over {len(family)} checks (p={fmt_p(v.get('p'))}, "
                             f"p_holm={fmt_p(v['p_holm'])}).")
    for v in judged:
        v.setdefault("p_holm", None)
        if v["verdict"] not in DECIDED:
            v.pop("closing", None)      # a gap within noise has no direction to lose
    return judged
