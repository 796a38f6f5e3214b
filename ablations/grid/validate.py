"""Types and structure of every key of a grid spec; whether each cell resolves to a valid
run is `expand`'s job. Errors are ConfigError naming the key (`checks[0].metric`)."""
from __future__ import annotations

import re

from transformer.validation import ConfigError, check_known, same_value

from ..posthoc.spec import check_evaluate
from ..config import check_key, choices_of
from ..metric_names import check_metric
from ..report.kinds import check_entry, known_key, loaded
from ..tasks import TASKS
from .expand import cells, matches
from .ladder import check_ladder
from .replication_spec import check_replicate
from .spec import EXPERIMENT_KEYS, GridSpec, as_task

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_spec(grid: GridSpec) -> None:
    s = grid.spec
    if not isinstance(s["name"], str) or not _NAME.fullmatch(s["name"]):
        raise ConfigError("name", f"must be a folder-safe name (letters, digits, _ . -), "
                          f"got {s['name']!r}")
    for key in ("claim", "published", "notes", "question"):
        expect(s.get(key, ""), str, key, "a string")
    chapter = s.get("chapter")
    if chapter is not None and (isinstance(chapter, bool) or not isinstance(chapter, int)
                                or chapter < 1):
        raise ConfigError("chapter", f"expected the claim's number (a positive integer), "
                          f"got {chapter!r}")
    parts = {None: s}
    if s.get("experiments") is not None:
        exps = expect(s["experiments"], dict, "experiments", "a mapping of name: settings")
        if not exps:
            raise ConfigError("experiments", "empty: name at least one experiment")
        for name, part in exps.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ConfigError("experiments", f"bad experiment name {name!r}")
            for key in expect(part or {}, dict, f"experiments.{name}", "a mapping"):
                if key not in EXPERIMENT_KEYS:
                    check_known(f"experiments.{name}", key, EXPERIMENT_KEYS, "key")
            parts[name] = part or {}
    for name, part in parts.items():
        _check_part(f"experiments.{name}." if name else "", part)
    for exp in grid.experiments:
        where = f"experiments.{exp.name}.task.name" if exp.name else "task.name"
        if exp.task.get("name") is None:
            raise ConfigError(where, "required: name the task here or at the top level")
        check_known(where, exp.task.get("name"), TASKS.names(), "task")
        for key in exp.bundles.values():
            for k in key:
                if k in exp.axes:
                    raise ConfigError("bundles", f"{k} is also an axis; a cell cannot "
                                      "take both (drop it from one of them)")
        if exp.match and exp.match["by"] in exp.swept:
            raise ConfigError("match.by", f"{exp.match['by']} is also an axis: a matched "
                              "width cannot vary by hand too")
        for key in exp.tune:
            if key in exp.axes or any(key in b for b in exp.bundles.values()):
                raise ConfigError("tune", f"{key} is also an axis or in a bundle: a setting "
                                  "is either the claim's (axes) or tuned per cell (tune)")
        _check_ladder_keys(exp)
    scales = expect(s.get("scales") or {}, dict, "scales", "a mapping of name: overrides")
    if "smoke" in scales and s.get("smoke") is not None:
        raise ConfigError("scales.smoke", "given twice: as smoke: and as scales.smoke")
    for name, overrides in [("smoke", s.get("smoke"))] + list(scales.items()):
        where = "smoke" if name == "smoke" and s.get("smoke") is not None else f"scales.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("scales", f"bad scale name {name!r}")
        _check_scale(where, overrides, list(parts)[1:])
    _check_scales_keep_axes(grid)
    workers = s.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError("workers", f"expected a positive integer, got {workers!r}")
    seeds = expect(s["seeds"], list, "seeds", "a list of integers")
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                            for x in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError("seeds", f"expected distinct non-negative integers, got {seeds!r}")
    _check_axis_values(grid)             # before selectors: a typo, not the check naming it
    _check_selectors(grid)
    check_evaluate(s.get("evaluate"))
    check_replicate(grid)


def _check_scale(where: str, overrides, experiments: list, nested: bool = False) -> None:
    """{section: {field: value}}, optionally `match` (only the target may change) and,
    at the top, `experiments: {NAME: overrides}` for what only one experiment has."""
    for key, values in expect(overrides or {}, dict, where, "a mapping").items():
        if key == "match":
            _check_match(f"{where}.match", values, partial=True)
        elif key == "ladder":
            check_ladder(f"{where}.ladder", values, _key)
        elif key == "experiments" and not nested:
            for name, sub in expect(values, dict, f"{where}.experiments", "a mapping").items():
                check_known(f"{where}.experiments", name, experiments, "experiment")
                _check_scale(f"{where}.experiments.{name}", sub, experiments, nested=True)
        else:
            _key(where, f"{key}.x")
            expect(values or {}, dict, f"{where}.{key}", "a mapping of fields")


def _check_scales_keep_axes(grid: GridSpec) -> None:
    """A scale sets the size of everything, but it must not set what a grid varies: a
    scale value for an axis (or tuned) key would give every cell of that axis the same
    config, and the cells would silently collapse into one run."""
    for name, overrides in grid.scales.items():
        where = "smoke" if name == "smoke" and grid.spec.get("smoke") is not None \
            else f"scales.{name}"
        common = _scale_keys(overrides)
        for exp in grid.experiments:
            own = ((overrides or {}).get("experiments") or {}).get(exp.name) or {}
            clash = [k for k in exp.swept if k in common | _scale_keys(own)]
            if clash:
                what = f"an axis of experiment {exp.name}" if exp.name else "an axis"
                raise ConfigError(where, f"{clash[0]} is {what}: a scale must not set it "
                                  "(every cell would become the same run); set it per "
                                  f"experiment under {where}.experiments for the others")


def _scale_keys(overrides) -> set[str]:
    return {f"{section}.{field}" for section, values in (overrides or {}).items()
            if section not in ("match", "experiments") and isinstance(values, dict)
            for field in values}


def _check_part(prefix: str, part: dict) -> None:
    """task, base, axes, bundles, exclude and match of the grid or of one experiment."""
    if prefix and part.get("task") is not None:
        expect(as_task(part["task"]), dict, f"{prefix}task", "a mapping with a name")
    elif not prefix:
        expect(part["task"], dict, "task", "a mapping with a name")
    for section, values in expect(part.get("base") or {}, dict, f"{prefix}base",
                                  "a mapping").items():
        _key(f"{prefix}base", f"{section}.x")
        expect(values or {}, dict, f"{prefix}base.{section}", "a mapping of fields")
    axes = expect(part.get("axes") or {}, dict, f"{prefix}axes",
                  "a mapping of section.field: [values]")
    _check_values(f"{prefix}axes", axes, least=1)
    tune = expect(part.get("tune") or {}, dict, f"{prefix}tune",
                  "a mapping of section.field: [values], e.g. {train.lr: [1e-3, 3e-3]}")
    _check_values(f"{prefix}tune", tune, least=2)
    bundles = expect(part.get("bundles") or {}, dict, f"{prefix}bundles",
                     "a mapping of name: overrides")
    for name, overrides in bundles.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{prefix}bundles", f"bad bundle name {name!r}")
        if not expect(overrides, dict, f"{prefix}bundles.{name}",
                      "a mapping of section.field: value"):
            raise ConfigError(f"{prefix}bundles.{name}", "empty bundle")
        for key in overrides:
            _key(f"{prefix}bundles.{name}", key)
            if key in axes:
                raise ConfigError(f"{prefix}bundles.{name}", f"{key} is also an axis; a "
                                  "cell cannot take both (drop it from one of them)")
    expect(part.get("exclude") or [], list, f"{prefix}exclude", "a list")
    if part.get("match") is not None:
        _check_match(f"{prefix}match", part["match"])
    if part.get("ladder") is not None:
        check_ladder(f"{prefix}ladder", part["ladder"], _key)


def _check_ladder_keys(exp) -> None:
    """A size sets the model's shape; what the experiment varies or solves by other
    means must not be among it (one of the two would silently win)."""
    if not exp.ladder:
        return
    where = f"experiments.{exp.name}.ladder" if exp.name else "ladder"
    varied = {**exp.swept, **{k: 0 for b in exp.bundles.values() for k in b}}
    if "train.steps" in varied:
        raise ConfigError(where, "train.steps is also an axis or in a bundle: a ladder "
                          "derives the steps of each size from tokens_per_param")
    for name, shape in exp.ladder["sizes"].items():
        for key in shape:
            if key in varied or (exp.match and exp.match.get("by") == key):
                raise ConfigError(f"{where}.sizes.{name}", f"{key} is also an axis, in a "
                                  "bundle or matched: a size sets it alone (drop it from "
                                  "one of them)")


def _check_values(where: str, swept: dict, least: int) -> None:
    """axes / tune: section.field -> a list of at least `least` distinct values."""
    for key, values in swept.items():
        _key(where, key)
        if len(expect(values, list, f"{where}.{key}", "a list of values")) < least:
            raise ConfigError(f"{where}.{key}", "empty axis: list at least one value"
                              if least == 1 else f"list at least {least} values to choose from")
        for i, v in enumerate(values):
            if any(same_value(v, w) for w in values[:i]):
                raise ConfigError(f"{where}.{key}", f"duplicate value {v!r}")


def _check_match(where: str, match, partial: bool = False) -> None:
    expect(match, dict, where, "a mapping like {params: 100000, by: model.d_model}")
    for key in match:
        if key not in ("params", "by", "tolerance"):
            check_known(where, key, ("params", "by", "tolerance"), "key")
    params = match.get("params")
    if isinstance(params, bool) or not isinstance(params, int) or params < 1:
        raise ConfigError(f"{where}.params", f"expected a positive integer, got {params!r}")
    if match.get("by") not in ("model.d_model", "model.d_ff") and not (partial
                                                                      and "by" not in match):
        raise ConfigError(f"{where}.by", f"expected model.d_model or model.d_ff, got "
                          f"{match.get('by')!r}")
    tol = match.get("tolerance", 0.05)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ConfigError(f"{where}.tolerance", f"expected a fraction in (0, 1), got {tol!r}")


def _check_axis_values(grid: GridSpec) -> None:
    """Each swept value of a categorical field is one of its choices, with a did-you-mean."""
    for exp in grid.experiments:
        prefix = f"experiments.{exp.name}." if exp.name and exp.name in (
            grid.spec.get("experiments") or {}) else ""
        for key, values in exp.swept.items():
            valid = choices_of(key)
            for value in values if valid and isinstance(values, list) else ():
                if isinstance(value, str):
                    check_known(f"{prefix}axes.{key}", value, valid, key.rpartition(".")[2])


def _check_selectors(grid: GridSpec) -> None:
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
    for what, kinds in (("checks", checks), ("plots", plots)):
        for i, item in enumerate(expect(grid.spec.get(what) or [], list, what, "a list")):
            where = f"{what}[{i}]"
            kind = check_entry(where, expect(item, dict, where, "a mapping"), kinds)
            for key in ("metric", "diversity"):
                if isinstance(item.get(key), str):
                    check_metric(f"{where}.{key}", item[key], tasks, grid.evaluate)
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


def expect(value, typ, where: str, what: str):
    if not isinstance(value, typ):
        raise ConfigError(where, f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _key(where: str, key) -> None:
    try:
        check_key(str(key))
    except ConfigError as e:
        raise ConfigError(where, str(e)) from None


def _selector(sel, where, keys, every) -> None:
    if not isinstance(sel, dict) or not sel:
        raise ConfigError(where, f"expected a mapping of axis key: value, got {sel!r}")
    for key in sel:
        known_key(where, key, sorted(keys))
    if not any(matches(exp, cell, sel) for exp, cell in every):
        raise ConfigError(where, f"{sel} matches no cell of the grid")
