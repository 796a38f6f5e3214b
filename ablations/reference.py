"""The config reference: every field of a run's three sections (model, train, task) with
its type, default and choices, from the dataclasses and registries themselves, so
`ablate list --fields`, `ablate list TASK`, `ablate config` and docs/config.md never
drift from the code. The choices also back grid validation's axis-value check.

    python -m ablations.reference > docs/config.md      # regenerate the docs page
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from transformer.config import ModelConfig
from transformer.registry import registries

from .config import TRAIN_CHOICES, TrainConfig
from .tasks import TASKS, suited_archs

REGENERATE = "python -m ablations.reference > docs/config.md"


@dataclass
class Field:
    key: str                      # section.name
    type: str
    default: Any
    choices: tuple = ()
    note: str = ""                # the field's comment in its dataclass


def _type_name(hint) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union and len(args) == 1:
        return f"{_type_name(args[0])} or null"
    return "any" if hint is Any else getattr(hint, "__name__", str(hint))


def _comments(cls) -> dict[str, str]:
    """name -> the `# comment` on its line in the class body (the fields' documentation)."""
    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*=[^#]*#\s*(.+)$", line)
        if m:
            out[m[1]] = m[2].strip()
    return out


def _fields(cls, section: str, choices: dict, skip=()) -> list[Field]:
    hints, notes = typing.get_type_hints(cls), {}
    for klass in reversed(cls.__mro__[:-1]):
        notes.update(_comments(klass) if dataclasses.is_dataclass(klass) else {})
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        valid = tuple(f.metadata.get("choices", ())) or tuple(choices.get(f.name, ()))
        out.append(Field(f"{section}.{f.name}", _type_name(hints[f.name]), default, valid,
                         notes.get(f.name, "")))
    return out


def model_fields() -> list[Field]:
    return _fields(ModelConfig, "model", {k: r.names() for k, r in registries.items()})


def train_fields() -> list[Field]:
    return _fields(TrainConfig, "train", TRAIN_CHOICES)


def task_fields(name: str) -> list[Field]:
    return _fields(TASKS.get(name).Params, "task", {}, skip=("name",))


def choices_of(key: str, task: str | None = None) -> tuple:
    """The valid values of a `section.field` key ('' when any value of its type goes)."""
    section = key.partition(".")[0]
    fields = {"model": model_fields, "train": train_fields}.get(section)
    if section == "task":
        if key == "task.name":
            return tuple(TASKS.names())
        fields = (lambda: task_fields(task)) if task in TASKS else None
    return next((f.choices for f in (fields() if fields else []) if f.key == key), ())


def fmt_default(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def field_rows(fields: list[Field]) -> list[tuple[str, str, str, str]]:
    return [(f.key, f.type, fmt_default(f.default), ", ".join(map(str, f.choices)) or f.note)
            for f in fields]


def task_description(name: str) -> str:
    cls = TASKS.get(name)
    return " ".join((cls.__doc__ or "").split())


def task_deltas(name: str) -> str:
    """The model and train defaults a task sets over the sections' own."""
    cls = TASKS.get(name)
    items = [f"model.{k}={v}" for k, v in cls.model_defaults.items()]
    items += [f"train.{k}={v}" for k, v in cls.train_defaults.items()]
    return ", ".join(items)


def _table(rows) -> list[str]:
    out = ["| field | type | default | choices / meaning |", "|---|---|---|---|"]
    return out + [f"| `{k}` | {t} | `{d}` | {c.replace('|', '/')} |" for k, t, d, c in rows]


def render_markdown() -> str:
    """docs/config.md."""
    lines = ["# Config reference", "",
             f"Generated from the code by `{REGENERATE}`; `ablate list --fields` prints the "
             "same, `ablate config --task NAME [--set ...]` a run's resolved config. A run's "
             "config has three sections; a grid's `base:`, `axes:` and `--set` name fields "
             "as `section.field`. A task's model and train defaults replace the sections' "
             "own; fields an architecture ignores are dropped from its resolved config.", "",
             "## model", "", "Choices are the registered variants (`transformer/registry.py`"
             "; a plugin adds its own).", "", *_table(field_rows(model_fields())), "",
             "## train", "", *_table(field_rows(train_fields())), "",
             "## task", "", "`task.name` is one of: " +
             ", ".join(f"`{n}`" for n in TASKS.names()) + "."]
    for name in TASKS.names():
        lines += ["", f"### task.name: {name}", "", task_description(name), "",
                  f"Archs: {', '.join(suited_archs(name))}. Defaults it sets: "
                  f"{task_deltas(name) or 'none'}.", ""]
        rows = field_rows(task_fields(name))
        lines += _table(rows) if rows else ["No fields of its own."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
