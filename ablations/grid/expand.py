"""Expanding a validated grid into its distinct runs (nothing is written).

Layer order for every run: task + base -> matched width -> axis values -> bundle ->
scale (e.g. smoke) -> ladder size and its steps -> extra (the runner's) -> --set -> seed.
Later layers win.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from transformer.validation import ConfigError

from ..config import nest, resolve, run_id
from ..selector import matches as selector_matches
from .ladder import budget, nonembedding_params
from .spec import Experiment, GridError, GridSpec


@dataclasses.dataclass
class Cell:
    experiment: str | None
    values: dict[str, Any]         # axis (or tuned) key -> value as written
    bundle: str | None
    size: str | None = None        # the ladder's size (ladder.py)

    def describe(self) -> str:
        parts = ([f"experiment={self.experiment}"] if self.experiment else []) + \
            ([f"size={self.size}"] if self.size else []) + \
            [f"{k}={v}" for k, v in self.values.items()] + \
            ([f"bundle={self.bundle}"] if self.bundle else [])
        return "cell " + " ".join(parts) if parts else "base"


@dataclasses.dataclass
class Run:
    run_id: str
    seed: int
    axes: dict[str, Any]           # axis key -> resolved value (None: the arch ignores it)
    bundle: str | None
    label: str
    config: dict                   # the resolved config
    experiment: str | None = None
    variant: str | None = None     # the label without the tuned keys (tuned grids only)
    size: str | None = None        # ladder size, and its mean non-embedding parameters
    size_params: int | None = None
    # the same run as a cell of other experiments (one config, trained once, counted in
    # each: a check on either experiment must find it)
    shared: list["Run"] = dataclasses.field(default_factory=list)

    def members(self) -> list["Run"]:
        return [self, *self.shared]

    def manifest_entry(self) -> dict:
        entry = {"run_id": self.run_id, "seed": self.seed, "axes": self.axes,
                 "bundle": self.bundle, "label": self.label}
        if self.experiment is not None:
            entry["experiment"] = self.experiment
        if self.variant is not None:
            entry["variant"] = self.variant
        if self.size is not None:
            entry.update(size=self.size, size_params=self.size_params)
        if self.shared:
            entry["shared"] = [{k: v for k, v in m.manifest_entry().items()
                                if k not in ("run_id", "seed")} for m in self.shared]
        return entry


def cells(grid: GridSpec, pruned: bool = True,
          experiments: list[Experiment] | None = None) -> list[tuple[Experiment, Cell]]:
    """Per experiment, the cartesian product of its ladder sizes, axes and tuned settings
    (times its bundles), minus its `exclude` matches."""
    out = []
    for exp in grid.experiments if experiments is None else experiments:
        swept = exp.swept
        for size in list((exp.ladder or {}).get("sizes") or {}) or [None]:
            for values in itertools.product(*swept.values()):
                for bundle in list(exp.bundles) or [None]:
                    cell = Cell(exp.name, dict(zip(swept, values)), bundle, size)
                    if not pruned or not any(matches(exp, cell, s) for s in exp.exclude):
                        out.append((exp, cell))
    if not out:
        raise GridError(grid.path, "exclude removes every cell of the grid")
    return out


def matches(exp: Experiment, cell: Cell, selector: dict) -> bool:
    """Does a cell match the selector? (ablations/selector.py has the rule)"""
    return selector_matches(view(exp, cell), selector)


def view(exp: Experiment, cell: Cell) -> dict:
    """What a selector can name of a cell: its axis, bundle and size values, its bundle,
    size and experiment."""
    shape = ((exp.ladder or {}).get("sizes") or {}).get(cell.size) or {}
    return {**shape, **exp.bundles.get(cell.bundle, {}), **cell.values,
            "bundle": cell.bundle, "experiment": cell.experiment, "size": cell.size}


def expand(grid: GridSpec, *, scale: str | None = None,
           sets: dict | None = None, seeds: list[int] | None = None,
           extra: dict | None = None, cache_dir=None) -> list[Run]:
    """Resolve every cell x seed; one Run per distinct run id, in grid order.

    A cell whose architecture ignores an axis (an LSTM across a `model.pos` axis)
    resolves to the same config for every value of it, so it is trained once;
    its `axes` entry for that key is None.
    """
    overrides = grid.scales.get(scale) or {} if scale else {}
    if scale and scale not in grid.scales:
        raise GridError(grid.path, f"--scale: unknown scale {scale!r}; valid: "
                        f"{', '.join(grid.scales) or 'none (the grid defines no scales)'}")
    seeds = list(grid.seeds if seeds is None else seeds)
    tail = [settings(overrides), extra or {}, nest(sets or {})]
    widths: dict[str, dict] = {}                  # solved once per cell, for every seed
    size_params: dict[tuple, int] = {}            # (experiment, size) -> N_s
    every = cells(grid, experiments=scaled(grid.experiments, overrides))
    runs: dict[str, Run] = {}
    for seed in seeds:                    # seed-major: an early stop leaves whole seeds
        for exp, cell in every:
            try:
                layers = _layers(exp, cell, overrides, tail, widths, cache_dir)
                n = None
                if cell.size is not None:
                    n = _size_params(exp, cell.size, every, overrides, tail, widths,
                                     cache_dir, size_params)
                    train = budget(exp.ladder, n, resolve(layers, cache_dir))
                    layers.insert(len(layers) - 2, {"train": train})
                resolved = resolve(layers + [{"train": {"seed": seed}}], cache_dir)
            except ConfigError as e:
                raise GridError(grid.path, f"{cell.describe()}: {e}") from None
            if exp.tune and not resolved["train"].get("test_batches"):
                raise GridError(grid.path, f"{cell.describe()}: tune: the tuned comparison "
                                "is reported on a test split; set train.test_batches (e.g. "
                                "16) in base")
            rid = run_id(resolved)
            axes = {k: resolved[k.split(".")[0]].get(k.split(".", 1)[1]) for k in cell.values}
            plain = {k: v for k, v in axes.items() if k not in exp.tune}
            run = Run(rid, seed, axes, cell.bundle,
                      label(axes, cell.bundle, cell.experiment, cell.size), resolved,
                      cell.experiment,
                      label(plain, cell.bundle, cell.experiment, cell.size) if exp.tune
                      else None, cell.size, n)
            if rid not in runs:
                runs[rid] = run
            elif all(m.experiment != cell.experiment for m in runs[rid].members()):
                # the same config in another experiment: trained once, counted in both
                runs[rid].shared.append(run)
    return list(runs.values())


def scaled(experiments: list[Experiment], overrides: dict) -> list[Experiment]:
    """The experiments with a scale's `ladder:` in place of their own (only where they
    have one) and its `tune:` values in place of theirs (only for keys they tune); an
    experiment's own scale entry wins over the scale's common one."""
    out = []
    for exp in experiments:
        own = (overrides.get("experiments") or {}).get(exp.name) or {}
        ladder = own.get("ladder") or overrides.get("ladder")
        if exp.ladder and ladder:
            exp = dataclasses.replace(exp, ladder=ladder)
        tune = {**(overrides.get("tune") or {}), **(own.get("tune") or {})}
        if any(k in exp.tune for k in tune):
            exp = dataclasses.replace(exp, tune={k: tune.get(k, v) for k, v in exp.tune.items()})
        out.append(exp)
    return out


def _layers(exp: Experiment, cell: Cell, overrides: dict, tail: list, widths: dict,
            cache_dir) -> list[dict]:
    """A cell's config layers, seed and ladder steps aside; the last two are the runner's
    extra and --set."""
    head = [{"task": exp.task}, exp.base]
    body = [nest(cell.values), nest(exp.bundles.get(cell.bundle) or {})]
    own = (overrides.get("experiments") or {}).get(exp.name) or {}
    # the scale's own overrides for this experiment win over its common ones; the size
    # comes after both (a scale must not collapse the ladder into one model)
    shape = nest(exp.ladder["sizes"][cell.size]) if cell.size is not None else {}
    rest = tail[:1] + ([settings(own)] if own else []) + [shape] + tail[1:]
    # a scale's common match resizes the matched experiments; a ladder's sizes are its own
    common = {} if exp.ladder and not exp.match else overrides.get("match") or {}
    match = {**(exp.match or {}), **common, **(own.get("match") or {})}
    if match:
        key = json.dumps([exp.name, cell.values, cell.bundle, cell.size], default=str)
        if key not in widths:
            widths[key] = solve(match, head, body + rest, cache_dir)
        head = head + [widths[key]]
    return head + body + rest


def _size_params(exp, size, every, overrides, tail, widths, cache_dir, memo) -> int:
    """N_s: the mean non-embedding parameter count of the experiment's cells at `size`
    (tuned values aside, they do not change a model)."""
    if (exp.name, size) not in memo:
        counts, seen = [], set()
        for e, c in every:
            if e is exp and c.size == size:
                model = resolve(_layers(e, c, overrides, tail, widths, cache_dir),
                                cache_dir)["model"]
                key = json.dumps(model, sort_keys=True, default=str)
                if key not in seen:                 # an lr sweep is one model
                    seen.add(key)
                    counts.append(nonembedding_params(model))
        memo[(exp.name, size)] = round(sum(counts) / len(counts))
    return memo[(exp.name, size)]


def settings(overrides: dict) -> dict:
    """A scale's config layer: its sections, without `match`, `ladder`, `tune`,
    `evaluate` and `experiments`."""
    return {k: v for k, v in overrides.items()
            if k not in ("match", "ladder", "tune", "evaluate", "experiments")}


def solve(match: dict, head: list, rest: list, cache_dir) -> dict:
    """The layer {section: {field: width}} that brings the cell to match.params."""
    from .budget import solve_width

    if "by" not in match:              # a scale changed the target of a grid without one
        raise ConfigError("match.by", "required: the grid states no match to change; "
                          "valid: model.d_model, model.d_ff")
    section, _, field = match["by"].partition(".")

    def at(width: int) -> dict:
        return resolve(head + [{section: {field: width}}] + rest, cache_dir)

    width, _ = solve_width(at, int(match["params"]), field=match["by"],
                           tolerance=float(match.get("tolerance", 0.05)))
    return {section: {field: width}}


def label(axes: dict, bundle: str | None, experiment: str | None = None,
          size: str | None = None) -> str:
    """'size=m, pos=rope, n_layers=4, h4_dk16': the variant a run belongs to, seeds
    aside."""
    fields = [k.split(".", 1)[1] for k in axes]
    parts = ([f"size={size}"] if size is not None else []) + \
        [f"{k if fields.count(k.split('.', 1)[1]) > 1 else k.split('.', 1)[1]}="
         f"{fmt(v)}" for k, v in axes.items() if v is not None]
    if bundle:
        parts.append(bundle)
    text = ", ".join(parts)
    if experiment:
        return f"{experiment}: {text}" if text else experiment
    return text or "base"


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)
