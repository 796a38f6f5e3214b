"""Run configuration: three sections (model, train, task), resolved from defaults,
task defaults, grid base, axes and --set overrides, validated before anything runs."""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, fields
from typing import Any, Optional

import yaml

from transformer.config import ConfigError, ModelConfig

SECTIONS = ("model", "train", "task")


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1.0e-3
    schedule: str = "cosine"          # cosine | noam | constant (all with linear warmup)
    warmup: int = 100
    min_lr_ratio: float = 0.1         # cosine floor as a fraction of lr
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0            # 0 disables clipping
    precision: str = "32"             # 32 | bf16-mixed | 16-mixed
    compile: bool = False             # torch.compile the inner network
    seed: int = 0
    eval_every: int = 250
    eval_batches: int = 8
    log_every: int = 25
    diag_every: int = 250             # attention entropy + per-layer grad norms
    ckpt_every: int = 250
    accelerator: str = "cpu"          # cpu | gpu | auto (passed to Lightning)
    devices: Any = 1                  # int or list, passed to Lightning
    strategy: str = "auto"            # auto | ddp | ddp_spawn | ...
    deterministic: bool = True
    threads: int = 0                  # torch threads per run; 0 = leave as is

    def __post_init__(self):
        check_types(self, "train")
        choices = {"schedule": SCHEDULES, "precision": PRECISIONS, "accelerator": ACCELERATORS}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"train.{name}", f"unknown value {getattr(self, name)!r}; "
                                  f"valid: {', '.join(valid)}")
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "log_every",
                     "diag_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError("train.lr", f"must be > 0, got {self.lr}")
        if self.warmup < 0:
            raise ConfigError("train.warmup", f"must be >= 0, got {self.warmup}")


SCHEDULES = ("cosine", "noam", "constant")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def check_types(obj, section: str) -> None:
    """Validate (and gently coerce) each dataclass field against its annotation."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        setattr(obj, f.name, coerce(value, hints[f.name], f"{section}.{f.name}"))


def coerce(value, hint, name: str):
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union:                      # Optional[X]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else coerce(value, args[0], name)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        (inner, *_) = typing.get_args(hint) or (Any,)
        return [coerce(v, inner, name) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)       # YAML 1.1 reads 1e-3 as a string
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(name, f"expected {getattr(hint, '__name__', hint)}, "
                      f"got {type(value).__name__} {value!r}")


def parse_value(text: str):
    """A --set value as YAML would read it ('3' -> 3, 'true' -> True, '[1,2]' -> list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['model.pos=rope', ...] -> {'model.pos': 'rope', ...}"""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", f"expected section.key=value, got {item!r}")
        check_key(key)
        out[key] = parse_value(value)
    return out


def check_key(key: str) -> None:
    section, dot, name = key.partition(".")
    if section not in SECTIONS or not dot or not name:
        hint = difflib.get_close_matches(section, SECTIONS, n=1)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(key, f"keys are section.field with section one of "
                          f"{', '.join(SECTIONS)}{did}")


def nest(flat: dict[str, Any]) -> dict[str, dict]:
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for key, value in flat.items():
        check_key(key)
        section, _, name = key.partition(".")
        out[section][name] = value
    return out


def merge(*layers: dict) -> dict[str, dict]:
    """Later layers win; each layer is {section: {field: value}}."""
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for layer in layers:
        for section, values in (layer or {}).items():
            if section not in SECTIONS:
                check_key(f"{section}.x")
            out[section].update(values or {})
    return out


def resolve(layers: list[dict], cache_dir=None) -> dict[str, dict]:
    """Merge config layers over the defaults and validate everything.

    Returns the resolved config {model, train, task} with every field explicit,
    except model fields that the chosen architecture ignores (dropped, so that
    equivalent runs share one run id). Raises ConfigError naming the field.
    """
    from .tasks import TASKS, make_params

    raw = merge(*layers)
    task_name = raw["task"].get("name")
    if task_name is None:
        raise ConfigError("task.name", f"required; valid: {', '.join(TASKS.names())}")
    if task_name not in TASKS:
        raise ConfigError("task.name", TASKS.unknown_message(task_name))
    task_cls = TASKS.get(task_name)
    params = make_params(task_cls, raw["task"])
    task_dict = dataclasses.asdict(params)

    train = _build(TrainConfig, {**task_cls.train_defaults, **raw["train"]}, "train")
    model_layer = {**task_cls.model_defaults, **raw["model"]}
    model_layer.setdefault("arch", task_cls.archs[0])
    model_layer["vocab_size"] = task_cls.vocab_size_for(params, cache_dir)
    model = _build(ModelConfig, model_layer, "model")
    if model.arch not in task_cls.archs:
        raise ConfigError("model.arch", f"task {task_name!r} does not suit arch "
                          f"{model.arch!r}; valid: {', '.join(task_cls.archs)}")
    task_cls.check_config(params, model)
    return {"model": model.to_dict(drop_ignored=True),
            "train": dataclasses.asdict(train), "task": task_dict}


def _build(cls, values: dict, section: str):
    valid = [f.name for f in fields(cls)]
    for key in values:
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{section}.{key}", f"unknown field{did}; valid: {', '.join(valid)}")
    hints = typing.get_type_hints(cls)
    values = {k: coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    try:
        return cls(**values)
    except ConfigError as e:
        if not e.field.startswith(section + "."):
            raise ConfigError(f"{section}.{e.field}", str(e).split(": ", 1)[1]) from None
        raise


def model_config(resolved: dict) -> ModelConfig:
    return ModelConfig(**resolved["model"])


def train_config(resolved: dict) -> TrainConfig:
    return TrainConfig(**resolved["train"])


# Settings that change how a run executes, not what it computes: never part of its id.
EXECUTION_ONLY = {"train": {"accelerator", "strategy", "threads", "compile",
                            "eval_every", "log_every", "diag_every", "ckpt_every"}}


def run_id(resolved: dict) -> str:
    """Stable id of what a run computes (sorted-key JSON, sha1, 12 hex digits)."""
    ident = {s: {k: v for k, v in resolved[s].items() if k not in EXECUTION_ONLY.get(s, ())}
             for s in SECTIONS}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]
