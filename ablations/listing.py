"""`ablate list`: every registered variant per kind, every task, every shipped grid;
`ablate list TASK` and `ablate list --fields`: fields with type, default and choices."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

from transformer.validation import ConfigError, check_known
from .plugins import add_plugin_option

def add_arguments(p) -> None:
    p.add_argument("task", nargs="?", metavar="TASK",
                   help="one task: its description, defaults and fields")
    p.add_argument("--fields", action="store_true",
                   help="every field of model, train and each task: type, default, choices")
    add_plugin_option(p)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one line of description per variant; tasks' full descriptions")


def main(args) -> int:
    from . import grid as grids
    from transformer.registry import registries

    from . import reference
    from .tasks import TASKS, suited_archs

    grids.import_plugins(args.plugin, "--plugin")
    if args.task is not None:
        check_known("task", args.task, TASKS.names(), "task")
        print_task(args.task)
        return 0
    if args.fields:
        print_fields()
        return 0
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
        text = reference.task_description(name) if args.verbose else \
            summary(TASKS.info(name)["doc"])
        print(_wrapped(f"  {name:<15} ", f"{text} [archs: {archs}]"))
    print(f"\nGrids ({_rel(grids.SHIPPED)}/; run with `ablate run FILE`)")
    for path in sorted(grids.SHIPPED.glob("*.yaml")):
        print(_wrapped(f"  {path.stem:<15} ", _grid_line(path, grids)))
    return 0


def print_task(name: str) -> None:
    from . import reference
    from .tasks import suited_archs
    print(_wrapped(f"{name}: ", reference.task_description(name)))
    print(_wrapped("  archs: ", ", ".join(suited_archs(name))))
    print(_wrapped("  defaults it sets: ", reference.task_deltas(name) or "none"))
    print("\nFields (task.FIELD; `ablate list --fields` has model and train too)")
    _print_rows(reference.field_rows(reference.task_fields(name)))


def print_fields() -> None:
    from . import reference
    from .tasks import TASKS
    for title, fields in (("model", reference.model_fields()),
                          ("train", reference.train_fields())):
        print(f"{title}:")
        _print_rows(reference.field_rows(fields))
    for name in TASKS.names():
        print(f"task (task.name={name}; defaults it sets: "
              f"{reference.task_deltas(name) or 'none'}):")
        _print_rows(reference.field_rows(reference.task_fields(name)) or
                    [("(no fields of its own)", "", "", "")])


def _print_rows(rows) -> None:
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    for key, typ, default, text in rows:
        head = f"  {key:<{widths[0]}}  {typ:<{widths[1]}}  {default:<{widths[2]}}  "
        print(_wrapped(head, text) if text else head.rstrip())


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
        tasks = [(part or {}).get("task") for part in exps.values()]
        # an experiment's task without a name (e.g. only eval_lengths) is the grid's task
        task = ", ".join(dict.fromkeys(
            str((t.get("name") if isinstance(t, dict) else t) or task) for t in tasks))
    return f"{claim}. [task {task}; {shape or 'one cell'}; {len(seeds)} seed(s)]"


def _wrapped(head: str, text: str, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=head,
                         subsequent_indent=" " * len(head))


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
