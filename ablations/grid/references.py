"""What a grid's checks, plots, exclusions and baseline refer to: axis values that exist,
cells their selectors match, metrics its runs will have, evaluations it defines. All of
it is checked before anything runs, so a typo is one line, not a verdict that quietly
comes out wrong after hours of training."""
from __future__ import annotations

from transformer.validation import ConfigError, check_known

from ..config import choices_of
from ..metric_names import check_metric
from ..report.kinds import check_entry, known_key, loaded
from .expand import cells, matches
from .spec import GridSpec, expect


def check_axis_values(grid: GridSpec) -> None:
    """Each swept value of a categorical field is one of its choices, with a did-you-mean."""
    for exp in grid.experiments:
        prefix = f"experiments.{exp.name}." if exp.name and exp.name in (
            grid.spec.get("experiments") or {}) else ""
        for key, values in exp.swept.items():
            valid = choices_of(key)
            for value in values if valid and isinstance(values, list) else ():
                if isinstance(value, str):
                    check_known(f"{prefix}axes.{key}", value, valid, key.rpartition(".")[2])


def check_references(grid: GridSpec) -> None:
    """Selectors, plots and checks name cells by what varies: axes, bundle keys,
    'bundle' and 'experiment'; each selector must match at least one cell."""
    exps = grid.experiments
    keys = {k for e in exps for k in e.swept} | {k for e in exps for b in e.bundles.values()
                                                  for k in b}
    keys |= {"bundle"} if any(e.bundles for e in exps) else set()
    keys |= {"experiment"} if grid.spec.get("experiments") else set()
    ladders = [e.ladder["sizes"] for e in exps if e.ladder]
    keys |= {"size"} | {k for sizes in ladders for shape in sizes.values()
                        for k in shape} if ladders else set()
    every = cells(grid, pruned=False)
    for exp in exps:
        for i, sel in enumerate(exp.exclude):
            _selector(sel, f"exclude[{i}]", keys, [(e, c) for e, c in every if e is exp])
    if grid.baseline is not None:
        _selector(grid.baseline, "baseline", keys, every)
    checks, plots = loaded()
    tasks = list(dict.fromkeys(e.task["name"] for e in exps))
    lengths = evaluated_lengths(grid)
    for what, kinds in (("checks", checks), ("plots", plots)):
        for i, item in enumerate(expect(grid.spec.get(what) or [], list, what, "a list")):
            where = f"{what}[{i}]"
            kind = check_entry(where, expect(item, dict, where, "a mapping"), kinds)
            for key in ("metric", "diversity"):
                if isinstance(item.get(key), str):
                    check_metric(f"{where}.{key}", item[key], tasks, grid.evaluate,
                                 lengths)
            _check_tuned(where, item, grid)
            if kind.ladder and not ladders:
                raise ConfigError(where, f"a {kind.name} {what[:-1]} reads a ladder's "
                                  "sizes; the grid has no ladder: (add one, grid/ladder.py)")
            for key, least in kind.evals:
                if key in item:
                    _check_names(f"{where}.{key}", item[key], grid, least)
            for key in kind.axes:             # 'label': one bar/curve per variant
                if key in item:
                    known_key(f"{where}.{key}", item[key], sorted(keys | {"label"}))
            for key in kinds.common.selectors + kind.selectors:
                if key in item:
                    _selector(item[key], f"{where}.{key}", keys, every)
    cells(grid)                                    # everything excluded is an error too


def _check_names(where: str, names, grid: GridSpec, least: int) -> None:
    """A list of the grid's evaluation names (`evaluate:`), at least `least` of them."""
    valid = list(grid.evaluate)
    if not isinstance(names, list) or len(names) < least:
        raise ConfigError(where, f"expected a list of at least {least} evaluation names; "
                          f"valid: {', '.join(valid) or 'none (the grid has no evaluate:)'}")
    for name in names:
        if not (isinstance(name, int) and not isinstance(name, bool)):   # a length: m@L
            check_known(where, name, valid, "evaluation (or a length)")


def _check_tuned(where: str, item: dict, grid: GridSpec) -> None:
    needs = "tuned" in item or item.get("kind") == "tune"
    if needs and not grid.tuned:
        key = "tuned" if "tuned" in item else "kind"
        raise ConfigError(f"{where}.{key}", "the grid tunes nothing; add tune: "
                          "{train.lr: [...]} or drop it")


def _selector(sel, where, keys, every) -> None:
    if not isinstance(sel, dict) or not sel:
        raise ConfigError(where, f"expected a mapping of axis key: value, got {sel!r}")
    for key in sel:
        known_key(where, key, sorted(keys))
    if not any(matches(exp, cell, sel) for exp, cell in every):
        raise ConfigError(where, f"{sel} matches no cell of the grid")


def evaluated_lengths(grid: GridSpec) -> set[int]:
    """Every length a grid's runs are scored at besides training's: its tasks'
    eval_lengths (as set, swept or scaled) and its decode_speed evaluations' lengths."""
    found: set[int] = set()

    def add(values) -> None:
        found.update(v for v in values or [] if isinstance(v, int) and not isinstance(v, bool))

    for exp in grid.experiments:
        add(exp.task.get("eval_lengths"))
        for value in exp.swept.get("task.eval_lengths") or []:
            add(value if isinstance(value, list) else [])
    for overrides in grid.scales.values():
        for part in [overrides or {}, *((overrides or {}).get("experiments") or {}).values()]:
            add(((part or {}).get("task") or {}).get("eval_lengths"))
    evaluate = grid.evaluate if isinstance(grid.evaluate, dict) else {}  # checked later
    for spec in (s for s in evaluate.values() if isinstance(s, dict)):
        add((spec.get("decode_speed") or {}).get("lengths"))
        add([spec["task.eval_lengths"]] if isinstance(spec.get("task.eval_lengths"), int)
            else spec.get("task.eval_lengths"))
    return found
