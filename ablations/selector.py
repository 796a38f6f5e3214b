"""The one selector rule: does a run match `{key: value}`?

A selector names runs by what varies in a grid: axis keys (`model.pos`), bundle keys,
`bundle`, `experiment`, `seed`, or any `section.field` of a run's config. The runner
(`exclude`, `baseline`), post-hoc evaluations (`where`) and the report (checks, plots)
all select with `matches`, so a selector means the same thing everywhere:

- a list value means any of its values;
- values compare as YAML writes them (`same_value`: 1e-3 matches 0.001);
- a key the run lacks, or holds as None/NaN, is *absent*: the run's architecture ignores
  it (an LSTM has no `model.pos`). A value never matches an absent key, so an LSTM never
  dilutes "rope vs none"; a selector value of null matches exactly the absent ones.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from transformer.validation import same_value

MISSING = object()          # what `lookup` returns for a key a run does not have


def present(value: Any) -> bool:
    """A value was recorded: not missing, None or NaN."""
    return value is not MISSING and value is not None and not (
        isinstance(value, float) and math.isnan(value))


def matches(run: Mapping[str, Any], selector: Mapping[str, Any] | None) -> bool:
    """Does the run (a mapping of key -> value) match every key of the selector?"""
    for key, want in (selector or {}).items():
        have = run.get(key, MISSING)
        wants = want if isinstance(want, (list, tuple)) else [want]
        if not any((w is None and not present(have))
                   or (w is not None and present(have) and same_value(have, w))
                   for w in wants):
            return False
    return True


def describe(selector: Mapping[str, Any] | None) -> str:
    """'pos=rope|alibi, n_layers=4' for evidence and messages."""
    parts = []
    for k, v in (selector or {}).items():
        v = "|".join(map(str, v)) if isinstance(v, (list, tuple)) else v
        parts.append(f"{k.split('.')[-1]}={v}")
    return ", ".join(parts) or "all runs"
