"""`ablate list`: every registered variant per kind, every task, every shipped grid."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

from transformer.validation import ConfigError



def add_arguments(p) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import a module that registers variants first (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one line of description per variant")


def main(args) -> int:
    from . import grid as grids
    from transformer.registry import registries

    from .tasks import TASKS, suited_archs

    grids.import_plugins(args.plugin, "--plugin")
    print("Variants (ModelConfig field: registered names; use as model.FIELD in a grid)")
    for field, reg in registries.items():
        if args.verbose:
            print(f"  {field}")
            for name in reg.names():
                print(f"    {name:<16} {summary(reg.info(name)['doc'])}".rstrip())
        else:
            print(_wrapped(f"  {field:<15} ", ", ".join(reg.names())))
    print("\nTasks (task.name; their fields go under task:)")
    for name in TASKS.names():
        archs = ", ".join(suited_archs(name))
        print(_wrapped(f"  {name:<15} ", f"{summary(TASKS.info(name)['doc'])} [archs: {archs}]"))
    print(f"\nGrids ({_rel(grids.SHIPPED)}/; run with `ablate run FILE`)")
    for path in sorted(grids.SHIPPED.glob("*.yaml")):
        print(_wrapped(f"  {path.stem:<15} ", _grid_line(path, grids)))
    return 0


def summary(doc: str, width: int = 110) -> str:
    """The first sentence of a docstring, cut to `width`."""
    return first_sentence(doc or "", width)


def first_sentence(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    text = re.split(r"(?<!\.)\.(?=\s+[A-Z(])", text, maxsplit=1)[0].rstrip(".")
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def _grid_line(path: Path, grids) -> str:
    try:
        spec = grids.read_yaml(path)
    except ConfigError as e:
        return f"(unreadable: {e})"
    if not isinstance(spec, dict):
        return "(not a grid mapping)"
    axes = spec.get("axes") or {}
    shape = " x ".join(f"{k} ({len(v) if isinstance(v, list) else '?'})" for k, v in axes.items())
    if spec.get("bundles"):
        shape += (" x " if shape else "") + f"bundles ({len(spec['bundles'])})"
    seeds = spec.get("seeds") or [0]
    claim = first_sentence(str(spec.get("claim") or ""), 300)
    task = spec.get("task", {})
    task = task.get("name") if isinstance(task, dict) else task
    exps = spec.get("experiments") if isinstance(spec.get("experiments"), dict) else {}
    if exps:
        shape = f"experiments: {', '.join(map(str, exps))}"
        tasks = [(part or {}).get("task") or task for part in exps.values()]
        task = ", ".join(dict.fromkeys(str(t.get("name") if isinstance(t, dict) else t)
                                       for t in tasks))
    return f"{claim}. [task {task}; {shape or 'one cell'}; {len(seeds)} seed(s)]"


def _wrapped(head: str, text: str, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=head,
                         subsequent_indent=" " * len(head))


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
