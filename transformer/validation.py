"""Validation shared by every config in the project: the model config here, and the run
config, tasks and grid specs in `ablations`. Errors are one line that names the field
and, for a bad name, the closest valid one and every valid choice.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Iterable


class ConfigError(ValueError):
    """Bad configuration; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def did_you_mean(name: Any, valid: Iterable[str]) -> str:
    """' (did you mean 'rope'?)' for a near miss, else ''."""
    hint = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def unknown(what: str, name: Any, valid: Iterable[str]) -> str:
    """"unknown pos 'rop' (did you mean 'rope'?); valid: none, rope, ..."""
    valid = list(valid)
    return f"unknown {what} {name!r}{did_you_mean(name, valid)}; valid: {', '.join(valid)}"


def check_known(field: str, name: Any, valid: Iterable[str], what: str = "value") -> None:
    valid = list(valid)
    if name not in valid:
        raise ConfigError(field, unknown(what, name, valid))


def same_value(a: Any, b: Any) -> bool:
    """Equality that forgives YAML's typing (1e-3 is a string, 0.001 a float) but not
    case: `model.pos: RoPE` names no variant, in a grid or in the report."""
    if a == b:
        return True
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def coerce(value: Any, hint: Any, name: str, strings: bool = True) -> Any:
    """`value` as the annotation `hint` wants it, or ConfigError naming `name`.

    Ints never pass for bools nor bools for ints; an int passes for a float. With
    `strings`, text as a command line or YAML 1.1 gives it is parsed ('3', '1e-3',
    'true'); without, only values of the right type pass (the model core's API).
    """
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):                   # X | None
        if value is None and type(None) in typing.get_args(hint):
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return coerce(value, args[0], name, strings)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        (inner, *_) = typing.get_args(hint) or (Any,)
        return [coerce(v, inner, name, strings) for v in value]
    text = strings and isinstance(value, str)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if text and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text:
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if text:
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str) or (strings and isinstance(value, (int, float))
                                      and not isinstance(value, bool)):
            return str(value)
    else:
        return value
    raise ConfigError(name, f"expected {type_name(hint)}, got {type(value).__name__} "
                      f"{value!r}")


def type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def check_fields(obj: Any, prefix: str = "", strings: bool = True) -> None:
    """Coerce (or reject) every field of a dataclass instance against its annotation;
    errors name `<prefix><field>`."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, coerce(getattr(obj, f.name), hints[f.name],
                                    f"{prefix}{f.name}", strings))


def build(cls: type, values: dict, section: str, what: str = "field"):
    """cls(**values) from raw config values: unknown keys and bad types are one-line
    errors naming `<section>.<key>`; so are the errors cls's own checks raise."""
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in valid:
            raise ConfigError(f"{section}.{key}", f"unknown {what}{did_you_mean(key, valid)}; "
                              f"valid: {', '.join(valid)}")
    hints = typing.get_type_hints(cls)
    values = {k: coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    try:
        return cls(**values)
    except ConfigError as e:
        if not e.field.startswith(section + "."):
            raise ConfigError(f"{section}.{e.field}", str(e).split(": ", 1)[1]) from None
        raise
