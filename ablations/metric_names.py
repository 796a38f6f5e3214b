"""Which metric names a grid's runs can have, known before anything trains, so that a
misspelt metric in a check or plot is a one-line error (exit 2) instead of a verdict
that quietly comes out "inconclusive" after hours of training.

A run's columns: its task's metrics per split (`val_<m>`, `test_<m>`; a measurement's
own names, unprefixed), what training logs (`TRAINING`, and per layer `<m>/layer<i>`),
its cost (`COST`), and post-hoc evaluations: `<m>@<NAME>` for an evaluation NAME, and a
`decode_speed` evaluation's `<m>@<L>` per length. `<m>@<L>` is also an `lm` task's score
at evaluation length L (`<m>@<L>_<band>` over a part of those crops, a task's `bands`:
`_beyond`, the positions past the training length), `<m>@init` any logged metric's
value at step 0, `<m>@step<N>` its last value logged by step N and `<m>@auc` the area
under its logged curve over the run (steps as a fraction of the last).
Each source declares its names where it computes them (Task.writes, posthoc/spec.py);
tests check the declarations against what the code writes.
"""
from __future__ import annotations

import re

from transformer.validation import ConfigError, did_you_mean

from .posthoc.spec import DECODE_METRICS, GENERATE_METRICS, check_evaluate
from .tasks import TASKS

TRAINING = ("train_loss", "lr", "grad_norm", "grad_norm_qk", "attn_entropy",
            "attn_entropy_frac", "attn_scale_rel", "diverged_step")
PER_LAYER = ("grad_norm", "attn_entropy", "attn_entropy_frac")
COST = ("params", "steps", "tokens", "tokens_per_s", "train_s", "wall_s", "peak_mem_mb",
        "diverged")
SPLITS = ("val", "test")
MEASURING = ("threads", "load_1m", "diverged_step")   # what every measured run also has


def known(tasks: list[str], evaluate: dict | None) -> set[str]:
    """Base names (no @suffix, no /layer<i>) the runs of these tasks and evaluations write."""
    names = set(COST)
    for task in tasks:
        info = TASKS.info(task)
        if info["measures"]:
            names |= set(info["writes"]) | set(MEASURING)
        else:
            names |= {f"{s}_{m}" for s in SPLITS for m in info["writes"]} | set(TRAINING)
    for spec in check_evaluate(evaluate).values():
        if "generate" in spec:
            names |= set(GENERATE_METRICS)
        if "decode_speed" in spec:
            names |= set(DECODE_METRICS)
    return names


def check_metric(where: str, metric: str, tasks: list[str], evaluate: dict | None,
                 lengths: set[int] | None = None) -> None:
    """ConfigError(where, ...) unless `metric` is a column these runs can have. `lengths`:
    the lengths an `@L` may name (a task's eval_lengths, a decode_speed's lengths);
    None accepts any."""
    base, _, suffix = str(metric).partition("@")
    for whole in ("@init", "@auc"):                      # of a logged curve
        suffix = suffix[:-len(whole)] if suffix.endswith(whole) else suffix
    if re.fullmatch(r"step\d+", suffix):                 # its value logged at step N
        suffix = ""
    length, _, band = suffix.partition("_")
    if length.isdigit() and band and suffix not in check_evaluate(evaluate):   # @<L>_<band>
        bands = sorted({b for task in tasks for b in TASKS.info(task)["bands"]})
        if band not in bands:
            raise ConfigError(where, f"unknown band in {metric!r}: _{band}"
                              f"{did_you_mean(band, bands)}; valid: "
                              f"{', '.join(bands) or 'none (no task of the grid has bands)'}")
        suffix = length
    if suffix and suffix not in ("init", "auc") and not suffix.isdigit() \
            and suffix not in check_evaluate(evaluate):
        names = list(check_evaluate(evaluate))
        raise ConfigError(where, f"unknown suffix in {metric!r}: @{suffix}"
                          f"{did_you_mean(suffix, names)} is neither an evaluation of the "
                          f"grid ({', '.join(names) or 'none'}), a length, init nor auc")
    if suffix.isdigit() and lengths is not None and int(suffix) not in lengths:
        have = ", ".join(map(str, sorted(lengths))) or "none"
        raise ConfigError(where, f"unknown length in {metric!r}: @{suffix} is not a length "
                          f"the grid evaluates (task.eval_lengths, decode_speed lengths: "
                          f"{have})")
    layer = base.partition("/layer")
    if layer[1] and layer[2].isdigit() and layer[0] in PER_LAYER:
        base = layer[0]
    valid = sorted(known(tasks, evaluate))
    if base not in valid:
        raise ConfigError(where, f"unknown metric {metric!r}{did_you_mean(base, valid)}; "
                          f"valid: {', '.join(valid)}")
