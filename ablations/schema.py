"""The kinds of check and plot a grid may ask for: one table, read by grid validation
(before anything runs), by the verdict engine and by the plot dispatch. Pure Python, no
pandas or matplotlib, so validating a grid stays fast.

A new plot kind is one entry in PLOT_KINDS plus its drawing function registered in
`ablations/report/plots.py` (an import-time check keeps the two in step); a new check
kind is one entry in CHECK_KINDS plus its judge in `ablations/report/verdicts.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

from transformer.validation import ConfigError, did_you_mean


@dataclass(frozen=True)
class Kind:
    name: str
    doc: str
    required: tuple[str, ...] = ()          # keys that must be present
    optional: tuple[str, ...] = ()          # keys that may be present
    selectors: tuple[str, ...] = ()         # keys whose value selects cells
    numbers: tuple[str, ...] = ()           # keys whose value must be a number
    flags: tuple[str, ...] = ()             # keys whose value must be true or false
    needs_metric: bool = True               # plots: drawn from a metric (else a model)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


# -- checks: every check has a claim and a metric; `where` restricts its runs first ----
# On a grid with `tune:`, checks and plots read each variant's runs at its chosen values
# (report/tuning.py); `tuned: false` reads every run (then fix the value with `where`).
CHECK_COMMON = Kind("common", "keys every check takes", required=("claim", "metric"),
                    optional=("better", "where", "tuned"), selectors=("where",),
                    flags=("tuned",))
CHECK_KINDS = {
    "compare": Kind(
        "compare", "compare − against, sign-flipped when lower is better, must clear "
        "min_effect (each: every value of compare's keys must, separately)",
        required=("compare", "against"), optional=("min_effect", "each"),
        selectors=("compare", "against"), numbers=("min_effect",), flags=("each",)),
    "threshold": Kind(
        "threshold", "the 95% CI of the selected runs' mean lies below and/or above a bound",
        optional=("select", "below", "above"), selectors=("select",),
        numbers=("below", "above")),
    "best": Kind(
        "best", "the selected group beats every other value of its keys",
        required=("best",), optional=("min_effect",), selectors=("best",),
        numbers=("min_effect",)),
    "trend": Kind(
        "trend", "metric@NAME for each evaluation NAME in `along`, in order: every next "
        "one is better (per-seed paired differences, each clearing min_effect)",
        required=("along",), optional=("select", "min_effect"), selectors=("select",),
        numbers=("min_effect",)),
}
BETTER = ("higher", "lower")


def check_kind(check: dict) -> str:
    """The one kind a check's keys name; ConfigError when none or several do."""
    kinds = [name for name, kind in CHECK_KINDS.items()
             if any(k in check for k in kind.keys if k not in ("min_effect", "select"))]
    if not kinds and "select" in check:
        kinds = ["threshold"]
    if len(kinds) != 1:
        raise ConfigError("check", "needs exactly one of: compare + against, "
                          "[select +] below/above, best, along")
    kind = CHECK_KINDS[kinds[0]]
    missing = [k for k in kind.required if k not in check]
    if missing:
        have = next(k for k in kind.required if k in check)
        raise ConfigError("check", f"{have} needs {missing[0]}")
    if kind.name == "threshold" and not ({"below", "above"} & set(check)):
        raise ConfigError("check", "select needs below: X and/or above: X")
    return kind.name


# -- plots: every plot has a kind and a metric -----------------------------------------
PLOT_COMMON = Kind("common", "keys every plot takes", required=("kind",),
                   optional=("metric", "where", "title", "logx", "logy", "tuned"),
                   selectors=("where",), flags=("logx", "logy", "tuned"))
PLOT_KINDS = {
    "bar": Kind("bar", "metric per value of x (default: the variant); bars = mean over "
                "seeds, error bars = 95% CI, dots = seeds", optional=("x", "hue")),
    "curve": Kind("curve", "learning curves from metrics.csv, one line per hue; band = "
                  "± 1 std over seeds", optional=("hue",)),
    "line": Kind("line", "metric vs axis x, one line per hue; error bars = 95% CI",
                 required=("x",), optional=("hue",)),
    "heatmap": Kind("heatmap", "mean metric over two axes x and y",
                    required=("x", "y")),
    "extrapolation": Kind("extrapolation", "metric@L against evaluation length L, one "
                          "line per hue", optional=("hue",)),
    "layers": Kind("layers", "metric/layer<i> against the layer index, one line per hue "
                   "(metric@init: at step 0, e.g. grad_norm@init)", optional=("hue",)),
    "tune": Kind("tune", "metric against a tuned setting (x: default the first `tune:` "
                 "key), one line per variant, each variant's chosen value starred; error "
                 "bars = 95% CI", optional=("x", "hue")),
    "frontier": Kind("frontier", "one point per evaluation NAME in `evals` (default: "
                     "every one with both metrics): metric@NAME against diversity@NAME, "
                     "error bars = 95% CI, the Pareto front dashed", required=("diversity",),
                     optional=("evals",)),
    "cross_attention": Kind("cross_attention", "where a trained encoder-decoder's decoder "
                            "reads the source: cross-attention per decoder layer on one "
                            "validation example (the first seed's run that `where` selects)",
                            needs_metric=False),
}
AXIS_KEYS = ("x", "y", "hue")                 # plot keys that name a grid key or 'label'


def known_key(where: str, key, valid) -> None:
    if key not in valid:
        valid = list(valid)
        raise ConfigError(where, f"unknown key {key!r}{did_you_mean(key, valid)}; "
                          f"valid: {', '.join(valid)}")


def plot_kind(plot: dict) -> str:
    if plot.get("kind") not in PLOT_KINDS:
        raise ConfigError("kind", f"expected one of {', '.join(PLOT_KINDS)}, "
                          f"got {plot.get('kind')!r}")
    return plot["kind"]


def check_entry(where: str, item: dict, what: str) -> Kind:
    """Keys and scalar values of one `checks:` (what='check') or `plots:` entry; returns
    its kind. Selectors and axis keys are checked by the caller, which knows the grid."""
    common, kinds = (CHECK_COMMON, CHECK_KINDS) if what == "check" else (PLOT_COMMON,
                                                                         PLOT_KINDS)
    every = list(dict.fromkeys(common.keys + tuple(k for kd in kinds.values()
                                                   for k in kd.keys)))
    for key in item:
        known_key(where, key, every)
    for key in common.required:
        if item.get(key) in (None, "") or not isinstance(item[key], str):
            raise ConfigError(f"{where}.{key}", "required (a string)")
    try:
        kind = kinds[check_kind(item) if what == "check" else plot_kind(item)]
    except ConfigError as e:
        sub = "" if e.field == "check" else f".{e.field}"
        raise ConfigError(f"{where}{sub}", str(e).split(": ", 1)[1]) from None
    if what == "plot" and kind.needs_metric and (not isinstance(item.get("metric"), str)
                                                 or not item["metric"]):
        raise ConfigError(f"{where}.metric", "required (a string)")
    for key in kind.required:
        if key not in item:
            raise ConfigError(f"{where}.{key}", f"required for a {kind.name} {what}")
    extra = [k for k in item if k not in common.keys + kind.keys]
    if extra:
        raise ConfigError(f"{where}.{extra[0]}", f"not a key of a {kind.name} {what}; "
                          f"valid: {', '.join(common.keys + kind.keys)}")
    if what == "check" and item.get("better", "higher") not in BETTER:
        raise ConfigError(f"{where}.better", f"expected higher or lower, got "
                          f"{item['better']!r}")
    for part in (common, kind):
        for key in part.numbers:
            if key in item and (isinstance(item[key], bool)
                                or not isinstance(item[key], (int, float))):
                raise ConfigError(f"{where}.{key}", f"expected a number, got {item[key]!r}")
        for key in part.flags:
            if key in item and not isinstance(item[key], bool):
                raise ConfigError(f"{where}.{key}", f"expected true or false, got "
                                  f"{type(item[key]).__name__} {item[key]!r}")
    return kind
