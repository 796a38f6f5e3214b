"""Run configuration: three sections (model, train, task), resolved from defaults,
task defaults, grid base, axes and --set overrides, validated before anything runs."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from typing import Any

import yaml

from transformer.config import ModelConfig
from transformer.registry import registries
from transformer.validation import ConfigError, build, check_fields, check_known, did_you_mean

from .tasks import TASKS, check_arch

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
    test_batches: int = 0             # >0: a held-out test split, scored once at the end
    log_every: int = 25
    diag_every: int = 250             # attention entropy + per-layer grad norms
    ckpt_every: int = 250
    accelerator: str = "auto"         # auto (a GPU when there is one) | cpu | gpu
    devices: Any = 1                  # int or list, passed to Lightning
    strategy: str = "auto"            # auto | ddp | ddp_spawn | ...
    deterministic: bool = True        # on a GPU: slower kernels, and some ops only warn
    threads: int = 0                  # torch threads per run; 0 = leave as is
    logger: str = "none"              # none | tensorboard | wandb | mlflow, beside metrics.csv

    def __post_init__(self):
        check_fields(self, "train.")
        for name, valid in TRAIN_CHOICES.items():
            check_known(f"train.{name}", getattr(self, name), valid)
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "log_every",
                     "diag_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError("train.lr", f"must be > 0, got {self.lr}")
        needs = LOGGERS[self.logger]
        if needs and not any(importlib.util.find_spec(m) for m in needs):
            raise ConfigError("train.logger", f"{self.logger} needs its package: "
                              f"pip install {LOGGER_PACKAGES[self.logger]}")
        if self.warmup < 0:
            raise ConfigError("train.warmup", f"must be >= 0, got {self.warmup}")
        if self.test_batches < 0:
            raise ConfigError("train.test_batches", f"must be >= 0, got {self.test_batches}")


SCHEDULES = ("cosine", "noam", "constant")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
# each logger is an optional extra: the modules any one of which it needs
LOGGERS = {"none": (), "tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",),
           "mlflow": ("mlflow",)}
TRAIN_CHOICES = {"schedule": SCHEDULES, "precision": PRECISIONS, "accelerator": ACCELERATORS,
                 "logger": tuple(LOGGERS)}
# what to pip install for each: the extras' own packages, so the hint works outside a
# checkout too (pyproject.toml's extras name the same ones)
LOGGER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}


def parse_value(text: str):
    """A --set value as YAML would read it ('3' -> 3, 'true' -> True, '[1,2]' -> list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def add_set_option(parser, example: str = "model.pos=rope train.steps=500") -> None:
    """`--set KEY=VALUE [KEY=VALUE ...]`, repeatable: one form for every command, so a
    command line that works for `ablate train` works for `ablate run` and back."""
    parser.add_argument("--set", dest="sets", action="extend", nargs="+", default=[],
                        metavar="KEY=VALUE",
                        help=f"override settings, several at once or repeated, e.g. {example}")


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
        raise ConfigError(key, f"keys are section.field with section one of "
                          f"{', '.join(SECTIONS)}{did_you_mean(section, SECTIONS)}")


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
    raw = merge(*layers)
    task_name = raw["task"].get("name")
    if task_name is None:
        raise ConfigError("task.name", f"required; valid: {', '.join(TASKS.names())}")
    check_known("task.name", task_name, TASKS.names(), "task")
    from .tasks import make_params          # imports the task's module (torch)
    task_cls = TASKS.get(task_name)
    params = make_params(task_cls, raw["task"])
    task_dict = dataclasses.asdict(params)

    train = build(TrainConfig, {**task_cls.train_defaults, **raw["train"]}, "train")
    model_layer = {**task_cls.model_defaults, **raw["model"]}
    model_layer.setdefault("arch", task_cls.default_arch)
    model_layer["vocab_size"] = task_cls.vocab_size_for(params, cache_dir)
    model = build(ModelConfig, model_layer, "model")
    check_arch(task_name, model.arch)
    task_cls.check_config(params, model)
    if model.pos == "t5" and model.t5_max_distance == 0:   # 0: the training length
        model = build(ModelConfig, {**model.to_dict(), "t5_max_distance":
                                    task_cls.max_positions(params, model.arch)}, "model")
    return {"model": model.to_dict(drop_ignored=True),
            "train": dataclasses.asdict(train), "task": task_dict}


def model_config(resolved: dict) -> ModelConfig:
    return ModelConfig(**resolved["model"])


def train_config(resolved: dict) -> TrainConfig:
    return TrainConfig(**resolved["train"])


# Settings that change how a run executes, not what it computes: never part of its id.
EXECUTION_ONLY = {"train": {"accelerator", "strategy", "threads", "compile", "logger",
                            "eval_every", "log_every", "diag_every", "ckpt_every"}}


# Fields added after results were committed: at these values they leave a run's id as it
# was, so the committed runs keep their ids.
OMITTED_AT = {"train": {"test_batches": 0},
              "task": {"right_frac": 1.0, "prefix": 0, "prefix_loss": True}}


def run_id(resolved: dict) -> str:
    """Stable id of what a run computes (sorted-key JSON, sha1, 12 hex digits)."""
    ident = {s: {k: v for k, v in resolved[s].items() if k not in EXECUTION_ONLY.get(s, ())
                 and not (k in OMITTED_AT.get(s, {}) and v == OMITTED_AT[s][k])}
             for s in SECTIONS}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def choices_of(key: str) -> tuple:
    """The valid values of a categorical model/train field or of task.name, from the
    registries and TrainConfig's choices: no torch needed. () for any other key (a task's
    own categorical fields are checked when its cells resolve)."""
    section, _, name = key.partition(".")
    if section == "model" and name in registries:
        return tuple(registries[name].names())
    if section == "train":
        return tuple(TRAIN_CHOICES.get(name, ()))
    return tuple(TASKS.names()) if key == "task.name" else ()
