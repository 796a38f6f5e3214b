"""A grid's `replicate:` block, and which runs a replication needs.

    replicate:
      seeds: [1000, 1001, 1002]   # held-out seeds, none of them in `seeds`
      corpus: file:PATH           # text grids: a second corpus (any lm/mlm task.source)
      retune: false               # tuned grids: sweep again instead of reusing the choice

`ablate replicate` reruns only the cells the grid's verdicts read (every check that is
not `sanity: true`): a run is needed when it matches a check's `where` and one of its
selectors (`compare`, `against`, `select`, `best`; a check with none, or of a kind that
reads every run `where` leaves (`best`), needs all of those; a kind that declares
`factors`, the interaction, one selector of each group: compare or against, and more_in
or than_in). On a tuned grid a check
reads each variant at its chosen values, so the replication trains only those, chosen
on the original results (report/tuning.py), unless `retune: true` or the check says
`tuned: false`. A run matches as the report will see it: its resolved axis values (None
where its arch ignores the axis), bundle, experiment, seed, and its stored config.
"""
from __future__ import annotations

import contextlib
import copy

from transformer.validation import ConfigError, check_known, same_value

from ..report.kinds import check_kind
from ..report.table import get_path
from ..selector import MISSING, matches, present
from ..tasks import TASKS
from .spec import GridSpec, as_task

KEYS = ("seeds", "corpus", "retune")
TEXT_TASKS = ("lm", "mlm")


def check_replicate(grid: GridSpec) -> None:
    """Types and values of `replicate:`. Validating needs no torch, so the corpus is
    checked as a source (`check_corpus`) by `ablate replicate`; its file may be missing
    until the corpus replication runs."""
    rep = grid.spec.get("replicate")
    if rep is None:
        return
    if not isinstance(rep, dict):
        raise ConfigError("replicate", f"expected a mapping like {{seeds: [1000, 1001, "
                          f"1002]}}, got {type(rep).__name__} {rep!r}")
    for key in rep:
        check_known("replicate", key, KEYS, "key")
    seeds = rep.get("seeds")
    if not isinstance(seeds, list) or len(seeds) < 2 or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds) \
            or len(set(seeds)) < len(seeds):
        raise ConfigError("replicate.seeds", "expected at least 2 distinct non-negative "
                          f"integers (the held-out seeds), got {seeds!r}")
    shared = [x for x in seeds if x in grid.seeds]
    if shared:
        raise ConfigError("replicate.seeds", f"seed {shared[0]} is also in seeds: "
                          "held-out seeds must be new ones")
    if "corpus" in rep:
        corpus = rep["corpus"]
        if not isinstance(corpus, str) or not corpus:
            raise ConfigError("replicate.corpus", f"expected a text source (shakespeare, "
                              f"python-docs, file:PATH, hf:NAME[:CONFIG]), got {corpus!r}")
        if not text_experiments(grid):
            raise ConfigError("replicate.corpus", "the grid has no text task (lm, mlm) "
                              "to train on another corpus")
    if "retune" in rep:
        if not isinstance(rep["retune"], bool):
            raise ConfigError("replicate.retune", f"expected true or false, got "
                              f"{rep['retune']!r}")
        if not grid.tuned:
            raise ConfigError("replicate.retune", "the grid tunes nothing; drop it")


def overridden(grid: GridSpec, seeds: list[int] | None, corpus: str | None) -> GridSpec:
    """The grid with its `replicate:` seeds and/or corpus replaced (`ablate replicate
    --seeds/--corpus`: seeds and a corpus the grid file does not name), validated as the
    block is; an error names the option."""
    if seeds is None and corpus is None:
        return grid
    spec = copy.deepcopy(grid.spec)
    spec["replicate"] = {**(spec.get("replicate") or {}),
                         **({"seeds": seeds} if seeds is not None else {}),
                         **({"corpus": corpus} if corpus is not None else {})}
    out = GridSpec(grid.path, spec)
    with as_options(seeds is not None, corpus is not None):
        check_replicate(out)
    return out


@contextlib.contextmanager
def as_options(seeds: bool, corpus: bool):
    """Re-raise a ConfigError about the block's seeds or corpus as one about the option
    that set them (where one did)."""
    try:
        yield
    except ConfigError as e:
        option = {"replicate.seeds": seeds and "--seeds",
                  "replicate.corpus": corpus and "--corpus"}.get(e.field)
        if not option:
            raise
        raise ConfigError(option, str(e).split(": ", 1)[-1]) from None


def check_corpus(grid: GridSpec) -> None:
    """The corpus is a source the text task accepts (imports the task, so torch)."""
    from ..tasks import make_params
    exp = text_experiments(grid)[0]
    try:
        make_params(TASKS.get(exp.task["name"]), {**exp.task,
                                                  "source": grid.spec["replicate"]["corpus"]})
    except ConfigError as e:
        raise ConfigError("replicate.corpus", str(e).split(": ", 1)[-1]) from None


def text_experiments(grid: GridSpec) -> list:
    return [e for e in grid.experiments if e.task.get("name") in TEXT_TASKS]


def on_corpus(grid: GridSpec, corpus: str) -> GridSpec:
    """The grid's text experiments only, each reading `corpus`."""
    spec = copy.deepcopy(grid.spec)
    if spec.get("experiments"):
        keep = {e.name for e in text_experiments(grid)}
        spec["experiments"] = {name: dict(part or {}) for name, part
                               in spec["experiments"].items() if name in keep}
        for part in spec["experiments"].values():
            # a task without a name merges over the grid's (spec.merged)
            part["task"] = {**(as_task(part.get("task")) or {}), "source": corpus}
    else:
        spec["task"] = {**spec["task"], "source": corpus}
    return GridSpec(grid.path, spec)


class RunView(dict):
    """What a selector can name of a run, as the report's row of it will hold it."""

    def __init__(self, run):
        super().__init__({"experiment": run.experiment, "bundle": run.bundle,
                          "seed": run.seed, **run.axes})
        self.config = run.config

    def get(self, key, default=None):
        if key in self:
            return self[key]
        return get_path(self.config, key, default) if "." in str(key) else default


def reads(check: dict, view: RunView, chosen: dict | None) -> bool:
    """Does the check read this run? `chosen`: variant -> {tuned key: value} when the
    check reads each variant at its chosen values (else None)."""
    kind = check_kind(check)
    if not matches(view, check.get("where")):
        return False
    if chosen is not None:
        pick = chosen.get(view.variant)
        # a key with no chosen value: the variant's experiment does not sweep it
        if pick is None or not all(not present(v) or same_value(view.get(k, MISSING), v)
                                   for k, v in pick.items()):
            return False
    if kind.whole:
        return True
    for group in kind.factors or (kind.selectors,):
        sels = [check[k] for k in group if check.get(k)]
        if sels and not any(matches(view, s) for s in sels):
            return False
    return True


def needed(checks: list[dict], runs: list, chosen: dict | None, retune: bool):
    """(the runs any verdict reads, {check index: indices of the runs it reads}) over the
    checks that are not sanity checks."""
    views = []
    for run in runs:
        view = RunView(run)
        view.variant = run.variant or run.label
        views.append(view)
    by_check: dict[int, list[int]] = {}
    for i, check in enumerate(checks):
        if check.get("sanity"):
            continue
        tuned = chosen if (chosen is not None and not retune
                           and check.get("tuned") is not False) else None
        by_check[i] = [j for j, view in enumerate(views) if reads(check, view, tuned)]
    keep = sorted({j for js in by_check.values() for j in js})
    return [runs[j] for j in keep], by_check
