"""Post-hoc evaluations: a grid's `evaluate:` key, the files it leaves, how they are read.

An evaluation re-scores a trained run's weights under other settings, without
retraining (the computing half is training/posthoc.py, `ablate _evaluate RUN_DIR`):

    evaluate:
      causal: {model.causal: true}                  # the same weights, with the mask
      long: {task.seq_len: 256, train.eval_batches: 4}
      sample:
        where: {task.name: lm}                      # optional: which runs (a selector)
        generate: {prompt: "The ", max_new_tokens: 120, temperature: 0.8}

Each NAME maps `section.field: value` overrides of the run's model (any field that
keeps every parameter shape), task (any field) and train (eval_batches, batch_size:
what the val sets hold) config; `generate:` adds text samples (text tasks);
`where:` selects runs by axis/bundle keys or any `section.field` of their config.

Store: runs/<id>/evals/<NAME>.json = {name, spec, config, metrics: {val_<m>[@L]: x},
samples: [...], wall_s, finished_at}, written atomically. `ablate run` computes, after
its runs, every evaluation that a finished ok run lacks or whose spec changed since, so
adding one to an existing grid just works. The report reads them as extra metric
columns `<metric>@<NAME>` (e.g. val_loss@causal) that checks and plots can name.

This module is torch-free at import (the grid spec and the report import it).
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from transformer.config import ConfigError

from . import store

KEY = "evaluate"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")         # a letter first: never an '@L' length
SECTIONS = ("model", "task", "train")
TRAIN_FIELDS = ("eval_batches", "batch_size")        # what the val sets hold; the rest is moot
RESERVED = ("generate", "where")
GENERATE = {"prompt": str, "max_new_tokens": int, "temperature": float, "top_k": int,
            "top_p": float, "samples": int}
GENERATE_DEFAULTS = {"max_new_tokens": 100, "temperature": 0.8, "top_k": None, "top_p": None,
                     "samples": 1}


# ----------------------------------------------------------------------- the spec
def check_evaluate(value) -> dict[str, dict]:
    """Validate the structure of a grid's `evaluate:` value; return it normalized
    ({} when absent). Raises ConfigError('evaluate.<NAME>[.key]', '...; valid: ...')."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(KEY, f"expected a mapping of NAME: {{section.field: value}}, got "
                          f"{type(value).__name__} {value!r}")
    out = {}
    for name, spec in value.items():
        where = f"{KEY}.{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(KEY, f"bad evaluation name {name!r}; valid: a letter, then "
                              "letters, digits, _ or -")
        if not isinstance(spec, dict) or not spec:
            raise ConfigError(where, f"expected a non-empty mapping of section.field: value "
                              f"(and optionally generate:, where:), got {spec!r}")
        for key, v in spec.items():
            if key == "generate":
                check_generate(v, f"{where}.generate")
            elif key == "where":
                if not isinstance(v, dict) or not v:
                    raise ConfigError(f"{where}.where", f"expected a mapping of key: value, "
                                      f"got {v!r}")
            else:
                check_override(str(key), where)
        out[name] = spec
    return out


def check_override(key: str, where: str) -> None:
    section, dot, field = key.partition(".")
    if section not in SECTIONS or not dot or not field:
        raise ConfigError(where, f"unknown key {key!r}; valid: model.FIELD, task.FIELD, "
                          f"{', '.join('train.' + f for f in TRAIN_FIELDS)}, "
                          f"{', '.join(RESERVED)}")
    if section == "train" and field not in TRAIN_FIELDS:
        raise ConfigError(f"{where}.{key}", "only what the val sets hold can change at "
                          f"evaluation; valid: {', '.join('train.' + f for f in TRAIN_FIELDS)}")
    if section == "task" and field == "name":
        raise ConfigError(f"{where}.{key}", "an evaluation keeps the run's task (change its "
                          "fields instead); valid: task.FIELD other than name")


def check_generate(value, where: str) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("prompt"), str) \
            or not value["prompt"]:
        raise ConfigError(where, f"expected a mapping with a non-empty prompt: TEXT, got "
                          f"{value!r}")
    for key, v in value.items():
        if key not in GENERATE:
            raise ConfigError(f"{where}.{key}", f"unknown key; valid: {', '.join(GENERATE)}")
        typ = GENERATE[key]
        ok = isinstance(v, typ) or (typ is float and isinstance(v, int))
        if isinstance(v, bool) or not ok:
            raise ConfigError(f"{where}.{key}", f"expected {typ.__name__}, got {v!r}")
    g = generation(value)
    for key, lo in (("max_new_tokens", 1), ("samples", 1), ("top_k", 1)):
        if g[key] is not None and g[key] < lo:
            raise ConfigError(f"{where}.{key}", f"must be >= {lo}, got {g[key]}")
    if g["temperature"] < 0:
        raise ConfigError(f"{where}.temperature", f"must be >= 0 (0: greedy), got "
                          f"{g['temperature']}")
    if g["top_p"] is not None and not 0 < g["top_p"] <= 1:
        raise ConfigError(f"{where}.top_p", f"must be in (0, 1], got {g['top_p']}")
    return g


def generation(value: dict) -> dict:
    return {**GENERATE_DEFAULTS, **value}


def overrides(spec: dict) -> dict[str, dict]:
    """{'model.causal': True, ...} -> {'model': {'causal': True}, 'task': {}, 'train': {}}"""
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for key, value in spec.items():
        if key not in RESERVED:
            section, _, field = key.partition(".")
            out[section][field] = value
    return out


# ----------------------------------------------------------------------- selecting runs
def applies(spec: dict, entry: dict, config: dict) -> bool:
    """Does the evaluation's `where:` select this run? entry: its manifest entry (axes,
    bundle, ...); other dotted keys are read from the run's resolved config."""
    for key, want in (spec.get("where") or {}).items():
        have = lookup(key, entry, config)
        wants = want if isinstance(want, list) else [want]
        if not any(_same(have, w) for w in wants):
            return False
    return True


_MISSING = object()


def lookup(key: str, entry: dict, config: dict):
    axes = entry.get("axes") or {}
    if key in axes:
        return axes[key]
    if key in entry and key not in ("axes", "run_id", "label"):
        return entry[key]                         # bundle, seed, experiment, ...
    section, dot, field = key.partition(".")
    if dot and field in (config.get(section) or {}):
        return config[section][field]
    return _MISSING


def _same(a, b) -> bool:
    if a is _MISSING:
        return False
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a).lower() == str(b).lower()


def eval_config(resolved: dict, spec: dict, cache_dir=None) -> dict:
    """The run's resolved config with the evaluation's overrides, validated like any
    run config (ConfigError names the field)."""
    from .config import resolve
    return resolve([resolved, overrides(spec)], cache_dir)


def check_runs(evaluate: dict | None, runs, cache_dir=None) -> None:
    """Before anything runs: every evaluation selects some run, resolves on each run it
    selects, keeps every parameter shape, and can generate where it asks to."""
    evaluate = check_evaluate(evaluate)
    checked: dict[str, None] = {}
    for name, spec in evaluate.items():
        selected = [r for r in runs if applies(spec, r.manifest_entry(), r.config)]
        if runs and not selected:
            raise ConfigError(f"{KEY}.{name}.where", f"{spec['where']} selects no run of the grid")
        for run in selected:
            key = json.dumps([name, run.config["model"], run.config["task"]], sort_keys=True,
                             default=str)
            if key in checked:
                continue
            checked[key] = None
            try:
                cfg = eval_config(run.config, spec, cache_dir)
                check_shapes(run.config["model"], cfg["model"])
                from .tasks import build_task             # e.g. crops longer than the text
                build_task(cfg["task"], 0, cfg["model"]["arch"], cache_dir)
                if "generate" in spec:
                    from .training.posthoc import prompt_ids
                    prompt_ids(cfg, spec["generate"]["prompt"], cache_dir)
            except ConfigError as e:
                raise ConfigError(f"{KEY}.{name}", f"run {run.run_id} ({run.label}): {e}") \
                    from None


def check_shapes(trained: dict, evaluated: dict) -> None:
    """The evaluated model must take the trained state_dict as it is."""
    a, b = param_shapes(trained), param_shapes(evaluated)
    if a == b:
        return
    changed = [k for k in dict.fromkeys(list(a) + list(b)) if a.get(k) != b.get(k)]
    fields = [k for k in evaluated if trained.get(k) != evaluated.get(k)]
    raise ConfigError(", ".join(f"model.{f}" for f in fields) or "model",
                      f"changes parameter shapes ({len(changed)} tensors, e.g. {changed[0]}: "
                      f"{a.get(changed[0])} -> {b.get(changed[0])}); the trained weights do "
                      "not fit: override only fields that keep shapes (causal, pos without a "
                      "table, max_len of a table-free encoding, dropout, ...)")


def param_shapes(model_cfg: dict) -> dict[str, tuple]:
    import torch

    from transformer import ModelConfig, build_model
    cfg = ModelConfig(**model_cfg)
    try:
        with torch.device("meta"):
            net = build_model(cfg)
    except (RuntimeError, NotImplementedError):
        net = build_model(cfg)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------- the store
def path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / store.EVALS / f"{name}.json"


def canonical(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def is_current(run_dir: Path, name: str, spec: dict) -> bool:
    p = path(run_dir, name)
    if not p.is_file():
        return False
    try:
        return canonical(store.read_json(p).get("spec")) == canonical(spec)
    except (OSError, ValueError):
        return False


def missing(evaluate: dict, entry: dict, run_dir: Path, force: bool = False) -> list[str]:
    """Evaluations this finished-ok run lacks (or whose spec changed; all with force)."""
    run_dir = Path(run_dir)
    if not evaluate or not store.is_done(run_dir) or not (run_dir / "model.pt").is_file():
        return []
    result = store.read_json(run_dir / store.RESULT)
    if result.get("status") != "ok":
        return []
    config = result.get("config") or store.read_json(run_dir / store.CONFIG)
    return [n for n, s in evaluate.items()
            if applies(s, entry, config) and (force or not is_current(run_dir, n, s))]


def metrics(run_dir: Path) -> dict[str, Any]:
    """{<metric>@<NAME>: value} over the run's stored evaluations (the report's columns)."""
    out: dict[str, Any] = {}
    folder = Path(run_dir) / store.EVALS
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = store.read_json(f)
        except (OSError, ValueError):
            continue
        for k, v in (data.get("metrics") or {}).items():
            out[f"{k}@{f.stem}"] = math.nan if v is None else v
    return out


def samples_markdown(grid_path: Path, runs) -> list[str]:
    """README lines: each variant's generated text, one seed (the lowest) per evaluation."""
    lines: list[str] = []
    if runs is None or not len(runs):
        return lines
    ok = runs[runs["status"] == "ok"].sort_values("seed", kind="stable")
    for label, sub in ok.groupby("label", sort=False):
        for run_id, seed in zip(sub["run_id"], sub["seed"]):
            folder = Path(grid_path) / "runs" / run_id / store.EVALS
            found = False
            for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                data = store.read_json(f)
                for s in data.get("samples") or []:
                    g = generation((data.get("spec") or {}).get("generate") or {})
                    lines += [f"**{label}** (seed {seed}, evaluation `{f.stem}`, temperature "
                              f"{g['temperature']:g}):\n", "```text",
                              s["prompt"] + s["text"], "```\n"]
                    found = True
            if found:
                break
    return (["## Samples\n", "Generated after training by the post-hoc evaluations "
             "(the prompt, then the model's continuation).\n"] + lines) if lines else []


# ----------------------------------------------------------------------- the runner's hook
def run_missing(evaluate: dict | None, runs, results: Path, grid: str, envs: list[dict],
                plugins: list[str]) -> int:
    """Compute every evaluation that finished ok runs lack: `ablate _evaluate RUN_DIR...`
    in one child per slot (the runs' own `train.threads` apply). Returns the number of
    evaluations still missing afterwards (failed: each printed one line)."""
    from .grid.pool import child_env
    evaluate = check_evaluate(evaluate)
    todo = [store.run_dir(results, grid, r.run_id) for r in runs
            if missing(evaluate, r.manifest_entry(), store.run_dir(results, grid, r.run_id))]
    if not todo:
        return 0
    n = sum(len(missing(evaluate, e, d)) for e, d in
            ((r.manifest_entry(), store.run_dir(results, grid, r.run_id)) for r in runs))
    print(f"{grid}: {n} post-hoc evaluation(s) of {len(todo)} run(s)", file=sys.stderr,
          flush=True)
    envs = envs or [{}]
    chunks = [todo[i::len(envs)] for i in range(min(len(envs), len(todo)))]
    cmd = [sys.executable, "-m", "ablations", "_evaluate"]
    procs = [subprocess.Popen(cmd + [str(d) for d in chunk], env=child_env(env, plugins))
             for chunk, env in zip(chunks, envs)]
    for p in procs:
        p.wait()
    left = sum(len(missing(evaluate, r.manifest_entry(), store.run_dir(results, grid, r.run_id)))
               for r in runs)
    if left:
        print(f"{grid}: {left} post-hoc evaluation(s) failed (see above); the next "
              "`ablate run` tries them again", file=sys.stderr)
    return left

