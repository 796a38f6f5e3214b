"""Grid specs: load a YAML file, validate all of it, expand it into distinct runs.

Nothing here writes to disk: `ablate run` calls `load` and `expand` first, so a bad
grid fails with one line before any run starts. Layer order for every run:
task + base -> axis values -> bundle -> smoke -> extra (runner) -> --set -> seed.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from pathlib import Path
from typing import Any

import yaml

from transformer.config import ConfigError

from .. import plugins
from ..config import check_key, nest, resolve, run_id

TOP_KEYS = ("name", "claim", "published", "task", "base", "axes", "bundles", "exclude",
            "seeds", "smoke", "baseline", "checks", "plots", "plugins",
            "evaluate")                                     # evaluate: see ablations/evals.py
REQUIRED = ("name", "claim", "task")
SHIPPED = Path(__file__).resolve().parents[1] / "grids"    # the catalogue's grid files


class GridError(ConfigError):
    """A bad grid spec; str() is '<grid file>: <message>'."""

    def __init__(self, path, message: str):
        super().__init__(str(path), message)


@dataclasses.dataclass
class Grid:
    path: Path
    spec: dict                     # the YAML as written (plus defaults), for the manifest

    def __getattr__(self, key):    # grid.name, grid.axes, ... read the spec
        if key in TOP_KEYS:
            return self.spec.get(key)
        raise AttributeError(key)


@dataclasses.dataclass
class Run:
    run_id: str
    seed: int
    axes: dict[str, Any]           # axis key -> resolved value (None: the arch ignores it)
    bundle: str | None
    label: str
    config: dict                   # the resolved config

    def manifest_entry(self) -> dict:
        return {"run_id": self.run_id, "seed": self.seed, "axes": self.axes,
                "bundle": self.bundle, "label": self.label}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a grid typo must not vanish."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise GridError(path, "no such file" if not path.exists() else "not a file")
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GridError(path, f"invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError as e:
        raise GridError(path, f"not a text file ({e.reason})") from None


def import_plugins(modules, path) -> None:
    """Import plugin modules (they register variants) before anything is validated."""
    try:
        plugins.import_plugins(modules)
    except ConfigError as e:
        raise GridError(path, str(e)) from None


def load(path, plugins=()) -> Grid:
    """Read and validate a grid file (structure and names; cells come in `expand`)."""
    path = Path(path)
    spec = read_yaml(path)
    if not isinstance(spec, dict):
        raise GridError(path, f"expected a mapping of grid keys, got {type(spec).__name__}")
    try:
        for key in spec:
            _known("grid", key, TOP_KEYS, sort=False)
        for key in REQUIRED:
            if spec.get(key) in (None, "", {}):
                raise ConfigError(key, "required")
        if isinstance(spec["task"], str):
            spec["task"] = {"name": spec["task"]}
        spec.setdefault("seeds", [0])
        mods = _expect(spec.get("plugins") or [], list, "plugins", "a list of module names")
        import transformer  # noqa: F401  (registers the built-in variants)
        import_plugins(mods + list(plugins), path)
        grid = Grid(path, spec)
        check_spec(grid)
    except GridError:
        raise
    except ConfigError as e:
        raise GridError(path, str(e)) from None
    return grid


def cells(grid: Grid, pruned: bool = True) -> list[tuple[dict, str | None]]:
    """The cartesian product of the axes (times the bundles), minus `exclude` matches."""
    axes = grid.axes or {}
    bundles = list((grid.bundles or {}).keys()) or [None]
    out = []
    for values in itertools.product(*axes.values()):
        for bundle in bundles:
            cell = (dict(zip(axes, values)), bundle)
            if not pruned or not any(matches(grid, cell, s) for s in grid.exclude or []):
                out.append(cell)
    if not out:
        raise GridError(grid.path, "exclude removes every cell of the grid")
    return out


def matches(grid: Grid, cell, selector: dict) -> bool:
    """Does a cell match every key of a selector? (a list value means any of)"""
    values, bundle = cell
    for key, want in selector.items():
        if key == "bundle":
            have = bundle
        elif key in values:
            have = values[key]
        else:
            have = (grid.bundles or {}).get(bundle, {}).get(key, _MISSING)
        wants = want if isinstance(want, list) else [want]
        if not any(same(have, w) for w in wants):
            return False
    return True


_MISSING = object()


def same(a, b) -> bool:
    """Equality that forgives YAML's typing (1e-3 is a string, 0.001 a float)."""
    if a is _MISSING or b is _MISSING:
        return False
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def expand(grid: Grid, *, smoke: bool = False, sets: dict | None = None,
           seeds: list[int] | None = None, extra: dict | None = None,
           cache_dir=None) -> list[Run]:
    """Resolve every cell x seed; one Run per distinct run id, in grid order.

    A cell whose architecture ignores an axis (an LSTM across a `model.pos` axis)
    resolves to the same config for every value of it, so it is trained once;
    its `axes` entry for that key is None.
    """
    seeds = list(grid.seeds if seeds is None else seeds)
    fixed = [{"task": grid.task}, grid.base or {}]
    tail = [(grid.smoke or {}) if smoke else {}, extra or {}, nest(sets or {})]
    runs: dict[str, Run] = {}
    for seed in seeds:                    # seed-major: an early stop leaves whole seeds
        for values, bundle in cells(grid):
            bundle_layer = nest((grid.bundles or {}).get(bundle, {})) if bundle else {}
            layers = fixed + [nest(values), bundle_layer] + tail + [{"train": {"seed": seed}}]
            try:
                resolved = resolve(layers, cache_dir)
            except ConfigError as e:
                raise GridError(grid.path, f"{describe(values, bundle)}: {e}") from None
            rid = run_id(resolved)
            if rid not in runs:
                axes = {k: resolved[k.split(".")[0]].get(k.split(".", 1)[1]) for k in values}
                runs[rid] = Run(rid, seed, axes, bundle, label(axes, bundle), resolved)
    return list(runs.values())


def describe(values: dict, bundle: str | None) -> str:
    parts = [f"{k}={v}" for k, v in values.items()] + ([f"bundle={bundle}"] if bundle else [])
    return "cell " + " ".join(parts) if parts else "base"


def label(axes: dict, bundle: str | None) -> str:
    """'pos=rope, n_layers=4, h4_dk16': the variant a run belongs to, seeds aside."""
    fields = [k.split(".", 1)[1] for k in axes]
    parts = [f"{k if fields.count(k.split('.', 1)[1]) > 1 else k.split('.', 1)[1]}="
             f"{fmt(v)}" for k, v in axes.items() if v is not None]
    if bundle:
        parts.append(bundle)
    return ", ".join(parts) or "base"


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)


# ----------------------------------------------------------------- structure checks
CHECK_KEYS = ("claim", "metric", "better", "compare", "against", "select", "below",
              "above", "best", "where", "min_effect", "each")     # see verdicts.py
PLOT_KEYS = ("kind", "metric", "x", "y", "hue", "where", "title", "logx", "logy")
PLOT_KINDS = ("bar", "curve", "line", "heatmap", "extrapolation")  # see plots.py
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_spec(grid: Grid) -> None:
    """Types and structure of every key; cell-level validity is `expand`'s job."""
    s = grid.spec
    if not isinstance(s["name"], str) or not _NAME.fullmatch(s["name"]):
        raise ConfigError("name", f"must be a folder-safe name (letters, digits, _ . -), "
                          f"got {s['name']!r}")
    for key in ("claim", "published"):
        _expect(s.get(key, ""), str, key, "a string")
    from ..tasks import TASKS
    if _expect(s["task"], dict, "task", "a mapping with a name").get("name") not in TASKS:
        raise ConfigError("task.name", TASKS.unknown_message(s["task"].get("name")))
    for key in ("base", "smoke"):
        for section, values in _expect(s.get(key) or {}, dict, key, "a mapping").items():
            _key(key, f"{section}.x")
            _expect(values or {}, dict, f"{key}.{section}", "a mapping of fields")
    axes = _expect(s.get("axes") or {}, dict, "axes", "a mapping of section.field: [values]")
    for key, values in axes.items():
        _key("axes", key)
        if not _expect(values, list, f"axes.{key}", "a list of values"):
            raise ConfigError(f"axes.{key}", "empty axis: list at least one value")
        for i, v in enumerate(values):
            if any(same(v, w) for w in values[:i]):
                raise ConfigError(f"axes.{key}", f"duplicate value {v!r}")
    bundles = _expect(s.get("bundles") or {}, dict, "bundles", "a mapping of name: overrides")
    for name, overrides in bundles.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("bundles", f"bad bundle name {name!r}")
        if not _expect(overrides, dict, f"bundles.{name}", "a mapping of section.field: value"):
            raise ConfigError(f"bundles.{name}", "empty bundle")
        for key in overrides:
            _key(f"bundles.{name}", key)
            if key in axes:
                raise ConfigError(f"bundles.{name}", f"{key} is also an axis; a cell cannot "
                                  "take both (drop it from one of them)")
    seeds = _expect(s["seeds"], list, "seeds", "a list of integers")
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                            for x in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError("seeds", f"expected distinct non-negative integers, got {seeds!r}")
    # selectors, plots and checks name cells by what varies: axes, bundle keys, 'bundle'
    keys = set(axes) | {k for b in bundles.values() for k in b} | ({"bundle"} if bundles else set())
    every = cells(grid, pruned=False)
    for i, sel in enumerate(_expect(s.get("exclude") or [], list, "exclude", "a list")):
        _selector(grid, sel, f"exclude[{i}]", keys, every)
    if s.get("baseline") is not None:
        _selector(grid, s["baseline"], "baseline", keys, every)
    for i, check in enumerate(_expect(s.get("checks") or [], list, "checks", "a list")):
        _check(grid, _expect(check, dict, f"checks[{i}]", "a mapping"), f"checks[{i}]", keys, every)
    for i, plot in enumerate(_expect(s.get("plots") or [], list, "plots", "a list")):
        _plot(grid, _expect(plot, dict, f"plots[{i}]", "a mapping"), f"plots[{i}]", keys, every)
    cells(grid)                                    # everything excluded is an error too
    from ..evals import check_evaluate             # post-hoc evaluations (evals.py)
    check_evaluate(s.get("evaluate"))


def _expect(value, typ, where: str, what: str):
    if not isinstance(value, typ):
        raise ConfigError(where, f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _key(where: str, key) -> None:
    try:
        check_key(str(key))
    except ConfigError as e:
        raise ConfigError(where, str(e)) from None


def _known(where: str, key, valid, sort: bool = True) -> None:
    if key not in valid:
        valid = sorted(valid) if sort else list(valid)
        hint = difflib.get_close_matches(str(key), valid, n=1)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(where, f"unknown key {key!r}{did}; valid: {', '.join(valid)}")


def _selector(grid, sel, where, keys, every) -> None:
    """A selector names cells by axis/bundle keys; it must match at least one cell."""
    if not isinstance(sel, dict) or not sel:
        raise ConfigError(where, f"expected a mapping of axis key: value, got {sel!r}")
    for key in sel:
        _known(where, key, keys)
    if not any(matches(grid, c, sel) for c in every):
        raise ConfigError(where, f"{sel} matches no cell of the grid")


def _check(grid, check: dict, where, keys, every) -> None:
    """The forms verdicts.py evaluates: compare + against, [select +] below/above, best."""
    for key in check:
        _known(where, key, CHECK_KEYS)
    for key in ("claim", "metric"):
        if not isinstance(check.get(key), str) or not check[key].strip():
            raise ConfigError(f"{where}.{key}", "required (a string)")
    if check.get("better", "higher") not in ("higher", "lower"):
        raise ConfigError(f"{where}.better", f"expected higher or lower, got {check['better']!r}")
    bounds = [k for k in ("below", "above") if k in check]
    kinds = [k for k, present in (("compare", "compare" in check or "against" in check),
                                  ("threshold", "select" in check or bounds),
                                  ("best", "best" in check)) if present]
    if len(kinds) != 1:
        raise ConfigError(where, "needs exactly one of: compare + against, "
                          "[select +] below/above, best")
    if kinds == ["compare"] and not {"compare", "against"} <= set(check):
        raise ConfigError(where, "compare needs against" if "compare" in check
                          else "against needs compare")
    if kinds == ["threshold"] and not bounds:
        raise ConfigError(where, "select needs below: X and/or above: X")
    for key in ("compare", "against", "select", "best", "where"):
        if key in check:
            _selector(grid, check[key], f"{where}.{key}", keys, every)
    for key in bounds + (["min_effect"] if "min_effect" in check else []):
        if isinstance(check[key], bool) or not isinstance(check[key], (int, float)):
            raise ConfigError(f"{where}.{key}", f"expected a number, got {check[key]!r}")
    _expect(check.get("each", False), bool, f"{where}.each", "true or false")


def _plot(grid, plot: dict, where, keys, every) -> None:
    for key in plot:
        _known(where, key, PLOT_KEYS)
    if plot.get("kind") not in PLOT_KINDS:
        raise ConfigError(f"{where}.kind", f"expected one of {', '.join(PLOT_KINDS)}, "
                          f"got {plot.get('kind')!r}")
    if not isinstance(plot.get("metric"), str):
        raise ConfigError(f"{where}.metric", "required (a string)")
    need = {"line": ("x",), "heatmap": ("x", "y")}.get(plot["kind"], ())
    for key in ("x", "y", "hue"):
        if key in plot:                   # 'label': one bar/curve per variant
            _known(f"{where}.{key}", plot[key], keys | {"label"})
        elif key in need:
            raise ConfigError(f"{where}.{key}", f"required for a {plot['kind']} plot")
    if "where" in plot:
        _selector(grid, plot["where"], f"{where}.where", keys, every)
