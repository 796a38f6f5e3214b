"""Expanding a validated grid into its distinct runs (nothing is written).

Layer order for every run: task + base -> matched width -> axis values -> bundle ->
scale (e.g. smoke) -> extra (the runner's) -> --set -> seed. Later layers win.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

from transformer.validation import ConfigError

from ..config import nest, resolve, run_id
from ..selector import matches as selector_matches
from .spec import Experiment, GridError, GridSpec


@dataclasses.dataclass
class Cell:
    experiment: str | None
    values: dict[str, Any]         # axis (or tuned) key -> value as written
    bundle: str | None

    def describe(self) -> str:
        parts = ([f"experiment={self.experiment}"] if self.experiment else []) + \
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
        if self.shared:
            entry["shared"] = [{k: v for k, v in m.manifest_entry().items()
                                if k not in ("run_id", "seed")} for m in self.shared]
        return entry


def cells(grid: GridSpec, pruned: bool = True) -> list[tuple[Experiment, Cell]]:
    """Per experiment, the cartesian product of its axes and tuned settings (times its
    bundles), minus its `exclude` matches."""
    out = []
    for exp in grid.experiments:
        swept = exp.swept
        for values in itertools.product(*swept.values()):
            for bundle in list(exp.bundles) or [None]:
                cell = Cell(exp.name, dict(zip(swept, values)), bundle)
                if not pruned or not any(matches(exp, cell, s) for s in exp.exclude):
                    out.append((exp, cell))
    if not out:
        raise GridError(grid.path, "exclude removes every cell of the grid")
    return out


def matches(exp: Experiment, cell: Cell, selector: dict) -> bool:
    """Does a cell match the selector? (ablations/selector.py has the rule)"""
    return selector_matches(view(exp, cell), selector)


def view(exp: Experiment, cell: Cell) -> dict:
    """What a selector can name of a cell: its axis and bundle values, its bundle and
    experiment."""
    return {**exp.bundles.get(cell.bundle, {}), **cell.values, "bundle": cell.bundle,
            "experiment": cell.experiment}


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
    runs: dict[str, Run] = {}
    for seed in seeds:                    # seed-major: an early stop leaves whole seeds
        for exp, cell in cells(grid):
            head = [{"task": exp.task}, exp.base]
            body = [nest(cell.values), nest(exp.bundles.get(cell.bundle) or {})]
            own = (overrides.get("experiments") or {}).get(exp.name) or {}
            # the scale's own overrides for this experiment win over its common ones
            rest = tail[:1] + [settings(own)] + tail[1:] if own else tail
            try:
                match = {**(exp.match or {}), **(overrides.get("match") or {}),
                         **(own.get("match") or {})}
                if match:
                    key = json.dumps([exp.name, cell.values, cell.bundle], default=str)
                    if key not in widths:
                        widths[key] = solve(match, head, body + rest, cache_dir)
                    head = head + [widths[key]]
                resolved = resolve(head + body + rest + [{"train": {"seed": seed}}],
                                   cache_dir)
            except ConfigError as e:
                raise GridError(grid.path, f"{cell.describe()}: {e}") from None
            if exp.tune and not resolved["train"].get("test_batches"):
                raise GridError(grid.path, f"{cell.describe()}: tune: the tuned comparison "
                                "is reported on a test split; set train.test_batches (e.g. "
                                "16) in base")
            rid = run_id(resolved)
            axes = {k: resolved[k.split(".")[0]].get(k.split(".", 1)[1]) for k in cell.values}
            plain = {k: v for k, v in axes.items() if k not in exp.tune}
            run = Run(rid, seed, axes, cell.bundle, label(axes, cell.bundle, cell.experiment),
                      resolved, cell.experiment,
                      label(plain, cell.bundle, cell.experiment) if exp.tune else None)
            if rid not in runs:
                runs[rid] = run
            elif all(m.experiment != cell.experiment for m in runs[rid].members()):
                # the same config in another experiment: trained once, counted in both
                runs[rid].shared.append(run)
    return list(runs.values())


def settings(overrides: dict) -> dict:
    """A scale's config layer: its sections, without `match` and `experiments`."""
    return {k: v for k, v in overrides.items() if k not in ("match", "experiments")}


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


def label(axes: dict, bundle: str | None, experiment: str | None = None) -> str:
    """'pos=rope, n_layers=4, h4_dk16': the variant a run belongs to, seeds aside."""
    fields = [k.split(".", 1)[1] for k in axes]
    parts = [f"{k if fields.count(k.split('.', 1)[1]) > 1 else k.split('.', 1)[1]}="
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
