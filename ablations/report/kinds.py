"""The kinds of check and plot a grid may use: one registry each, filled by the modules
that judge and draw them. A new kind is one decorated function::

    @PLOTS.register("violin", "metric per variant as a violin over seeds",
                    optional=("x",), axes=("x",))
    def violin(grid, runs, plot) -> (table, figure): ...

    @CHECKS.register("ratio", "compare / against clears a bound",
                     required=("compare", "against", "above"), ...)
    def ratio(check, runs, metric) -> (verdict, evidence): ...

The declaration is the schema: grid validation (before anything runs), the report's
dispatch, the keys the report reads from stored configs and `docs/design.md` all read
it. Judges live in verdicts.py (and trend.py, interaction.py), drawers in plots.py and
plot_*.py; `loaded()` imports them all.
Pure Python here, so this module costs nothing to import.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from transformer.validation import ConfigError, did_you_mean


@dataclass(frozen=True)
class Kind:
    name: str
    doc: str
    required: tuple[str, ...] = ()          # keys that must be present
    optional: tuple[str, ...] = ()          # keys that may be present
    marks: tuple[str, ...] = ()             # checks: keys that say "this kind" (default:
    #                                         its required keys)
    selectors: tuple[str, ...] = ()         # keys whose value selects cells
    numbers: tuple[str, ...] = ()           # keys whose value must be a number
    flags: tuple[str, ...] = ()             # keys whose value must be true or false
    evals: tuple[tuple[str, int], ...] = ()  # keys listing evaluation names, and how many
    axes: tuple[str, ...] = ()              # plots: keys naming a grid key (or 'label')
    one_of: tuple[str, ...] = ()            # at least one of these keys
    needs_metric: bool = True               # plots: drawn from a metric (else a model)
    directed: bool = False                  # checks: needs to know which way is better
    whole: bool = False                     # checks: reads every run `where` leaves, not only
    #                                         its selectors' (best: every other group)
    factors: tuple[tuple[str, ...], ...] = ()  # checks: a run is read when it matches a
    #                                         selector of each group (default: any one)
    choices: tuple[tuple[str, tuple], ...] = ()  # keys whose value is one of these
    ladder: bool = False                    # reads a ladder's sizes (grid/ladder.py)
    gaps: Callable | None = field(default=None, compare=False, repr=False)
    #                                         checks: fn(check, runs) -> [(a_sel, b_sel)],
    #                                         the gaps a − b it judges at the end of
    #                                         training (budget.py reads their curves)
    validate: Callable | None = field(default=None, compare=False, repr=False)
    #                                         fn(where, item): what the declarations above
    #                                         cannot say; raises ConfigError(where.key, ...)
    fn: Callable | None = field(default=None, compare=False, repr=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


class Kinds(dict):
    """name -> Kind, with the keys every entry takes (`common`)."""

    def __init__(self, what: str, common: Kind):
        super().__init__()
        self.what, self.common = what, common

    def register(self, name: str, doc: str, **declared) -> Callable:
        def deco(fn):
            if name in self:
                raise ValueError(f"{self.what} kind {name!r} is already registered")
            self[name] = Kind(name, " ".join(doc.split()), fn=fn, **declared)
            return fn
        return deco

    def every_key(self) -> list[str]:
        return list(dict.fromkeys(self.common.keys + tuple(k for kd in self.values()
                                                           for k in kd.keys)))


# On a grid with `tune:`, checks and plots read each variant's runs at its chosen values
# (tuning.py); `tuned: false` reads every run (then fix the value with `where`).
# `sanity: true`: the outcome is fixed by construction, so the check is no verdict
# (family.py).
CHECKS = Kinds("check", Kind("common", "keys every check takes",
                             required=("claim", "metric"),
                             optional=("better", "where", "tuned", "sanity"),
                             selectors=("where",), flags=("tuned", "sanity")))
# `reference: {value: X, label: chance}` (or a list of them): a dashed horizontal line
PLOTS = Kinds("plot", Kind("common", "keys every plot takes", required=("kind",),
                           optional=("metric", "where", "title", "logx", "logy", "tuned",
                                     "reference"),
                           selectors=("where",), flags=("logx", "logy", "tuned")))
BETTER = ("higher", "lower")
# Which way a metric is better, from its name: `better:` may be left out only where this
# settles it (a loss is never silently judged "higher is better").
_LOWER = ("loss", "perplexity", "ppl", "repetition", "wall_s", "train_s", "_ms", "mem_mb",
          "critical_path")
_HIGHER = ("acc", "exact", "distinct", "tokens_per_s", "tps", "speedup", "same_tokens",
           "loglik")


def better_of(check: dict) -> str:
    """The check's `better:`, or the direction its metric's name declares; ConfigError
    when neither says."""
    if check.get("better") is not None:
        return str(check["better"])
    base = str(check.get("metric", "")).split("@")[0].split("/")[0]
    lower = any(w in base for w in _LOWER)
    higher = any(w in base for w in _HIGHER)
    if lower != higher:
        return "lower" if lower else "higher"
    raise ConfigError("better", f"required: metric {check.get('metric')!r} does not say "
                      "whether higher or lower is better; valid: higher, lower")
_MODULES = ("verdicts", "plots", "plot_lines", "plot_sweeps", "plot_effects", "trend",
            "plot_ladder", "interaction")


def references(where: str, plot: dict) -> list[tuple[float, str]]:
    """A plot's `reference:` as [(value, label)]; ConfigError(where.reference, ...) for
    anything but {value: number, label: text} or a list of them."""
    given = plot.get("reference")
    items = given if isinstance(given, list) else [] if given is None else [given]
    out = []
    for i, ref in enumerate(items):
        at = f"{where}.reference" + (f"[{i}]" if isinstance(given, list) else "")
        if not isinstance(ref, dict) or set(ref) - {"value", "label"} or "value" not in ref:
            raise ConfigError(at, f"expected {{value: X, label: TEXT}}, got {ref!r}")
        value = ref["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{at}.value", f"expected a number, got {value!r}")
        out.append((float(value), str(ref.get("label", "reference"))))
    return out


def loaded() -> tuple[Kinds, Kinds]:
    """CHECKS and PLOTS with every shipped kind registered."""
    for name in _MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return CHECKS, PLOTS


def check_kind(check: dict) -> Kind:
    """The one kind a check's keys name; ConfigError('check', ...) when none or several."""
    named = [k for k in CHECKS.values() if any(m in check for m in k.marks or k.required)]
    # a kind named only by keys another named kind also requires is that kind's part
    # (compare + against + across is a ladder check, not a compare)
    named = [k for k in named if not any(
        o is not k and {m for m in k.marks or k.required if m in check} <= set(o.required)
        for o in named)] or named
    if len(named) != 1:
        if not named and "select" in check:
            raise ConfigError("check", "select needs below: X and/or above: X")
        raise ConfigError("check", "needs exactly one of: " + ", ".join(
            " + ".join(k.required) or "/".join(k.marks) for k in CHECKS.values()))
    kind = named[0]
    missing = [k for k in kind.required if k not in check]
    if missing:
        have = next((k for k in kind.required if k in check), kind.name)
        raise ConfigError("check", f"{have} needs {missing[0]}")
    if kind.one_of and not set(kind.one_of) & set(check):
        raise ConfigError("check", f"needs {' and/or '.join(k + ': X' for k in kind.one_of)}")
    return kind


def plot_kind(plot: dict) -> Kind:
    if plot.get("kind") not in PLOTS:
        raise ConfigError("kind", f"expected one of {', '.join(sorted(PLOTS))}, got "
                          f"{plot.get('kind')!r}")
    return PLOTS[plot["kind"]]


def known_key(where: str, key, valid) -> None:
    if key not in valid:
        valid = list(valid)
        raise ConfigError(where, f"unknown key {key!r}{did_you_mean(key, valid)}; "
                          f"valid: {', '.join(valid)}")


def check_entry(where: str, item: dict, kinds: Kinds) -> Kind:
    """Keys and scalar values of one `checks:` or `plots:` entry; returns its kind.
    Selectors, axis keys and evaluation names are checked by the caller, which knows
    the grid (grid/validate.py)."""
    common, what = kinds.common, kinds.what
    for key in item:
        known_key(where, key, kinds.every_key())
    for key in common.required:
        if item.get(key) in (None, "") or not isinstance(item[key], str):
            raise ConfigError(f"{where}.{key}", "required (a string)")
    try:
        kind = check_kind(item) if kinds is CHECKS else plot_kind(item)
    except ConfigError as e:
        sub = "" if e.field == "check" else f".{e.field}"
        raise ConfigError(f"{where}{sub}", str(e).split(": ", 1)[1]) from None
    if kinds is PLOTS and kind.needs_metric and (not isinstance(item.get("metric"), str)
                                                 or not item["metric"]):
        raise ConfigError(f"{where}.metric", "required (a string)")
    for key in kind.required:
        if key not in item:
            raise ConfigError(f"{where}.{key}", f"required for a {kind.name} {what}")
    extra = [k for k in item if k not in common.keys + kind.keys]
    if extra:
        raise ConfigError(f"{where}.{extra[0]}", f"not a key of a {kind.name} {what}; "
                          f"valid: {', '.join(common.keys + kind.keys)}")
    if "better" in item and item["better"] not in BETTER:
        raise ConfigError(f"{where}.better", f"expected higher or lower, got "
                          f"{item['better']!r}")
    if kind.directed:
        try:
            better_of(item)
        except ConfigError as e:
            raise ConfigError(f"{where}.better", str(e).split(": ", 1)[1]) from None
    if kinds is PLOTS:
        references(where, item)
        if kind.one_of and not set(kind.one_of) & set(item):
            raise ConfigError(where, f"a {kind.name} plot needs "
                              f"{' or '.join(k + ': SEL' for k in kind.one_of)}")
    for part in (common, kind):
        for key in part.numbers:
            if key in item and (isinstance(item[key], bool)
                                or not isinstance(item[key], (int, float))):
                raise ConfigError(f"{where}.{key}", f"expected a number, got {item[key]!r}")
        for key in part.flags:
            if key in item and not isinstance(item[key], bool):
                raise ConfigError(f"{where}.{key}", f"expected true or false, got "
                                  f"{type(item[key]).__name__} {item[key]!r}")
    for key, valid in kind.choices:
        wanted = item.get(key)
        for value in wanted if isinstance(wanted, list) and key in item else [wanted]:
            if key in item and value not in valid:
                raise ConfigError(f"{where}.{key}", f"expected one of {', '.join(valid)}"
                                  f"{' (or a list of them)' if isinstance(wanted, list) else ''}"
                                  f", got {value!r}")
    if kind.validate is not None:
        kind.validate(where, item)
    return kind


def selector_keys(spec: dict) -> list[str]:
    """Every key the spec's checks, plots and baseline select or draw by: what the report
    reads from each run's stored config when it is not an axis."""
    CHECKS_, PLOTS_ = loaded()
    keys: list[str] = list((spec.get("baseline") or {}).keys())
    for items, kinds in ((spec.get("plots") or [], PLOTS_), (spec.get("checks") or [],
                                                               CHECKS_)):
        for item in items:
            try:
                kind = check_kind(item) if kinds is CHECKS_ else plot_kind(item)
            except ConfigError:
                continue
            keys += [item[k] for k in kind.axes if isinstance(item.get(k), str)]
            for k in kind.selectors + kinds.common.selectors:   # the order summary.csv had
                keys += list((item.get(k) or {}).keys())
    return list(dict.fromkeys(keys))

