"""Types and structure of every key of a grid spec; whether each cell resolves to a valid
run is `expand`'s job. Errors are ConfigError naming the key (`checks[0].metric`)."""
from __future__ import annotations

import re

from transformer.validation import ConfigError, check_known, same_value

from ..posthoc.spec import check_evaluate, scaled
from ..config import check_key
from ..tasks import TASKS
from .ladder import check_ladder
from .references import check_axis_values, check_references
from .replication_spec import check_replicate
from .spec import EXPERIMENT_KEYS, GridSpec, as_task, expect

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_spec(grid: GridSpec) -> None:
    """Every key of the grid, in the order a reader meets them; the first problem is the
    ConfigError raised."""
    _check_header(grid.spec)
    parts = _check_parts(grid.spec)
    _check_experiments(grid)
    _check_scales(grid, list(parts)[1:])
    _check_runs(grid.spec)
    check_axis_values(grid)              # before selectors: a typo, not the check naming it
    check_references(grid)
    check_evaluate(grid.spec.get("evaluate"))
    check_replicate(grid)


def _check_header(s: dict) -> None:
    """name, the texts, chapter."""
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


def _check_parts(s: dict) -> dict:
    """The grid's own settings and each experiment's: {None: grid, name: experiment}."""
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
    return parts


def _check_experiments(grid: GridSpec) -> None:
    """Each experiment as merged: a known task, and no setting both swept and fixed."""
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


def _check_scales(grid: GridSpec, experiments: list) -> None:
    s = grid.spec
    scales = expect(s.get("scales") or {}, dict, "scales", "a mapping of name: overrides")
    if "smoke" in scales and s.get("smoke") is not None:
        raise ConfigError("scales.smoke", "given twice: as smoke: and as scales.smoke")
    for name, overrides in [("smoke", s.get("smoke"))] + list(scales.items()):
        where = "smoke" if name == "smoke" and s.get("smoke") is not None else f"scales.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("scales", f"bad scale name {name!r}")
        _check_scale(where, overrides, experiments, tuned={k for e in grid.experiments
                                                            for k in e.tune})
        scaled(grid.spec.get("evaluate"), (overrides or {}).get("evaluate"),
               f"{where}.evaluate")
    _check_scales_keep_axes(grid)


def _check_runs(s: dict) -> None:
    """workers and seeds."""
    workers = s.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError("workers", f"expected a positive integer, got {workers!r}")
    seeds = expect(s["seeds"], list, "seeds", "a list of integers")
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                            for x in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError("seeds", f"expected distinct non-negative integers, got {seeds!r}")


def _check_scale(where: str, overrides, experiments: list, nested: bool = False,
                 tuned: set = frozenset()) -> None:
    """{section: {field: value}}, optionally `match` (only the target may change),
    `ladder`, `tune` (fewer values for keys the grid tunes) and, at the top,
    `experiments: {NAME: overrides}` for what only one experiment has and `evaluate:
    {NAME: {key: value}}` (changes to the grid's evaluations, checked by the caller)."""
    for key, values in expect(overrides or {}, dict, where, "a mapping").items():
        if key == "match":
            _check_match(f"{where}.match", values, partial=True)
        elif key == "ladder":
            check_ladder(f"{where}.ladder", values, _key)
        elif key == "tune":            # fewer swept values (a smoke run needs one)
            tune = expect(values, dict, f"{where}.tune", "a mapping of section.field: "
                          "[values], the grid's tuned keys with fewer values")
            _check_values(f"{where}.tune", tune, least=1)
            for k in tune:
                if k not in tuned:
                    raise ConfigError(f"{where}.tune.{k}", "not tuned by the grid; a scale "
                                      "may only narrow a sweep the grid has (tuned: "
                                      f"{', '.join(sorted(tuned)) or 'none'})")
        elif key == "evaluate" and not nested:     # checked against the grid's, above
            continue
        elif key == "experiments" and not nested:
            for name, sub in expect(values, dict, f"{where}.experiments", "a mapping").items():
                check_known(f"{where}.experiments", name, experiments, "experiment")
                _check_scale(f"{where}.experiments.{name}", sub, experiments, nested=True,
                             tuned=tuned)
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


def _key(where: str, key) -> None:
    try:
        check_key(str(key))
    except ConfigError as e:
        raise ConfigError(where, str(e)) from None
