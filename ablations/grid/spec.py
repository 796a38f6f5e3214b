"""Grid specs: read a YAML file and validate all of it before anything runs.

A grid states one claim, the task and settings its runs share (`task`, `base`), what
varies (`axes`, `bundles` of coupled overrides, `exclude`), the seeds, and how to judge
and draw it (`checks`, `plots`). `scales:` names override sets for other sizes of the
same grid: `smoke` (tiny, for CI; also written as a top-level `smoke:`) and `gpu`
(research size), chosen with `ablate run --scale NAME`. A grid whose claim
needs more than one setting splits into named `experiments`, each a task/base/axes/...
of its own merged over the top-level ones; checks and plots select one with
`experiment: NAME`. `match: {params: N, by: model.d_model}` solves each cell's width so
that every cell has about N parameters (see budget.py). `tune: {train.lr: [...]}` sweeps
settings that are not the claim's: every cell is trained at each value, and the report
compares the cells each at its best value, chosen on the validation split and reported
on the test split (report/tuning.py). `chapter:` (the claim's number in docs/catalogue.md)
and `question:` place the grid in the story that REPORT.md tells. `replicate:` declares
the held-out seeds (and a second corpus) `ablate replicate` reruns the verdicts on
(replication_spec.py). `ladder:` trains an experiment's cells at several named model
sizes on a budget that grows with the size (ladder.py), for the report's scale trends.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import yaml

from transformer.validation import ConfigError

from ..posthoc.spec import evaluate_at

__all__ = ["GridSpec", "GridError", "Experiment", "read_yaml", "SHIPPED", "TOP_KEYS",
           "EXPERIMENT_KEYS", "REQUIRED"]

TOP_KEYS = ("name", "claim", "published", "task", "base", "axes", "bundles", "exclude",
            "experiments", "match", "seeds", "smoke", "scales", "baseline", "checks",
            "plots", "evaluate", "notes", "workers", "plugins", "tune", "chapter",
            "question", "replicate", "ladder")
# what an experiment may set for itself; everything else is the grid's
EXPERIMENT_KEYS = ("task", "base", "axes", "bundles", "exclude", "match", "tune", "ladder")
REQUIRED = ("name", "claim", "task")
SHIPPED = Path(__file__).resolve().parents[1] / "grids"    # the catalogue's grid files


class GridError(ConfigError):
    """A bad grid spec; str() is '<grid file>: <message>'."""

    def __init__(self, path, message: str):
        super().__init__(str(path), message)


@dataclasses.dataclass
class Experiment:
    """One self-contained part of a grid (the whole grid when it has no `experiments`)."""
    name: str | None
    task: dict
    base: dict
    axes: dict[str, list]
    bundles: dict[str, dict]
    exclude: list[dict]
    match: dict | None
    tune: dict[str, list] = dataclasses.field(default_factory=dict)   # swept, then chosen
    ladder: dict | None = None     # named model sizes and the budget rule (ladder.py)

    @property
    def swept(self) -> dict[str, list]:
        """The axes and the tuned settings: everything a cell's runs are expanded over."""
        return {**self.axes, **self.tune}


@dataclasses.dataclass
class GridSpec:
    path: Path
    spec: dict                     # the YAML as written (plus defaults), for the manifest

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def claim(self) -> str:
        return self.spec["claim"]

    @property
    def seeds(self) -> list[int]:
        return self.spec["seeds"]

    @property
    def smoke(self) -> dict:
        return self.scales.get("smoke") or {}

    @property
    def scales(self) -> dict[str, dict]:
        """Scale name -> overrides ({section: {field: value}}, optionally `match`)."""
        out = dict(self.spec.get("scales") or {})
        if self.spec.get("smoke") is not None:
            out["smoke"] = self.spec["smoke"]
        return out

    @property
    def plugins(self) -> list[str]:
        return self.spec.get("plugins") or []

    @property
    def checks(self) -> list[dict]:
        return self.spec.get("checks") or []

    @property
    def plots(self) -> list[dict]:
        return self.spec.get("plots") or []

    @property
    def workers(self) -> int | None:
        """The most runs at once this grid allows (timing grids: 1)."""
        return self.spec.get("workers")

    @property
    def notes(self) -> str:
        """What the grid's runs found and why (markdown), for its README."""
        return str(self.spec.get("notes") or "").strip()

    @property
    def evaluate(self) -> dict:
        """Post-hoc evaluations of the trained runs (ablations/posthoc/spec.py)."""
        return self.spec.get("evaluate") or {}

    def evaluate_at(self, scale: str | None) -> dict:
        """The evaluations at a scale: its `evaluate:` merged over the grid's."""
        return evaluate_at(self.spec, scale)

    @property
    def tuned(self) -> bool:
        """Does any experiment sweep settings to compare its cells at their best?"""
        return any(e.tune for e in self.experiments)

    @property
    def baseline(self) -> dict | None:
        return self.spec.get("baseline")

    @functools.cached_property
    def experiments(self) -> list[Experiment]:
        s = self.spec
        top = Experiment(None, s["task"], s.get("base") or {}, s.get("axes") or {},
                         s.get("bundles") or {}, s.get("exclude") or [], s.get("match"),
                         s.get("tune") or {}, s.get("ladder"))
        return [top] if not s.get("experiments") else \
            [merged(top, name, part or {}) for name, part in s["experiments"].items()]


def merged(top: Experiment, name: str, part: dict) -> Experiment:
    """An experiment's own settings over the grid's. Its task replaces the grid's when it
    names another task (their fields differ), else updates it; base merges per section;
    axes and bundles add to the grid's (the experiment's win); exclude adds up; match and
    tune and ladder replace the grid's (`ladder: null` drops it)."""
    task = as_task(part.get("task")) or {}
    if task.get("name", top.task.get("name")) == top.task.get("name"):
        task = {**top.task, **task}
    base = {sec: {**(top.base.get(sec) or {}), **((part.get("base") or {}).get(sec) or {})}
            for sec in dict.fromkeys([*top.base, *(part.get("base") or {})])}
    return Experiment(name, task, base, {**top.axes, **(part.get("axes") or {})},
                      {**top.bundles, **(part.get("bundles") or {})},
                      list(top.exclude) + list(part.get("exclude") or []),
                      part.get("match", top.match), part.get("tune", top.tune) or {},
                      part.get("ladder", top.ladder))


def as_task(task: Any) -> Any:
    return {"name": task} if isinstance(task, str) else task


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


def expect(value, typ, where: str, what: str):
    if not isinstance(value, typ):
        raise ConfigError(where, f"expected {what}, got {type(value).__name__} {value!r}")
    return value
