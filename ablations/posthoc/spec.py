"""The `evaluate:` key of a grid: evaluations of trained runs under other settings,
without retraining (computed by compute.py, `ablate _evaluate`):

    evaluate:
      causal: {model.causal: true}                  # the same weights, with the mask
      long: {task.seq_len: 256, train.eval_batches: 4}
      sample:
        where: {task.name: lm}                      # optional: which runs (a selector)
        generate: {prompt: "The ", max_new_tokens: 120, temperature: 0.8}
      speed:
        decode_speed: {prompt: "The ", lengths: [16, 256, 1024]}

Each NAME maps `section.field: value` overrides of the run's model (any field that keeps
every parameter shape), task (any field but its name) and train (eval_batches,
batch_size: what the val sets hold) config; `generate:` adds text samples (text tasks)
and their diversity (distinct_1/2/3: unique n-grams over all n-grams of the samples;
repetition: the share of a sample's 4-grams that repeat an earlier one;
distinct_2_within: a sample's own distinct bigrams, averaged over samples;
distinct_2_across: 1 - the mean Jaccard overlap of two samples' bigram sets, 0 when
every sample is the same text) and quality (loglik: mean log-probability per generated
token under the model itself, untempered, which falls with temperature by construction;
with `scorer: SELECTOR`, loglik_scorer: the same under another run of the grid, the
one of the same seed the selector names, trained on the same text: a judge that did not
write the samples);
`decode_speed:` times greedy generation with and without the KV cache at each length
(tps_cache@L, tps_nocache@L, speedup@L, and same_tokens@L: 1 when both decode the same
tokens; same_tokens: the least of them);
`where:` selects runs by axis/bundle keys or any `section.field` of their config. The
report reads the results as metric columns `<metric>@<NAME>` (e.g. val_loss@causal).

Torch-free at import: grid validation imports it before anything runs.
"""
from __future__ import annotations

import re

from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..selector import matches

KEY = "evaluate"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")         # a letter first: never an '@L' length
STEP = re.compile(r"step\d+")                         # '@step<N>': a value at step N
SECTIONS = ("model", "task", "train")
TRAIN_FIELDS = ("eval_batches", "batch_size")        # what the val sets hold; the rest is moot
RESERVED = ("generate", "where", "decode_speed")
DECODE_SPEED = {"prompt": str, "lengths": list}
GENERATE = {"prompt": str, "max_new_tokens": int, "temperature": float, "top_k": int,
            "top_p": float, "samples": int, "scorer": dict}
# the metrics each kind of evaluation writes (decoding.py computes them; a test keeps the
# two in step), for checking a grid's metric names before anything runs
GENERATE_METRICS = ("distinct_1", "distinct_2", "distinct_3", "distinct_2_within",
                    "distinct_2_across", "repetition", "loglik", "loglik_scorer")
DECODE_METRICS = ("tps_cache", "tps_nocache", "speedup", "same_tokens")
GENERATE_DEFAULTS = {"max_new_tokens": 100, "temperature": 0.8, "top_k": None, "top_p": None,
                     "samples": 1, "scorer": None}


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
        if name in ("init", "auc") or STEP.fullmatch(name):   # read from a logged curve
            raise ConfigError(KEY, f"the evaluation name {name!r} is reserved (metric@init, "
                              "metric@step<N> and metric@auc read a metric's logged curve "
                              "during training); choose another")
        if not isinstance(spec, dict) or not spec:
            raise ConfigError(where, f"expected a non-empty mapping of section.field: value "
                              f"(and optionally generate:, where:), got {spec!r}")
        for key, v in spec.items():
            if key == "generate":
                check_generate(v, f"{where}.generate")
            elif key == "decode_speed":
                check_decode_speed(v, f"{where}.decode_speed")
            elif key == "where":
                if not isinstance(v, dict) or not v:
                    raise ConfigError(f"{where}.where", f"expected a mapping of key: value, "
                                      f"got {v!r}")
            else:
                check_override(str(key), where)
        out[name] = spec
    return out


def scaled(evaluate, override, where: str) -> dict[str, dict]:
    """The grid's evaluations with a scale's `evaluate: {NAME: {key: value}}` merged in
    (generate: and decode_speed: field by field), validated: a smoke scale draws fewer
    samples without renaming what the checks read. `where` names the scale's key."""
    out = check_evaluate(evaluate)
    if override in (None, {}):
        return out
    if not isinstance(override, dict):
        raise ConfigError(where, f"expected a mapping of NAME: {{key: value}}, got {override!r}")
    out = dict(out)
    for name, part in override.items():
        if name not in out:
            raise ConfigError(f"{where}.{name}", f"not an evaluation of the grid; valid: "
                              f"{', '.join(out) or 'none (the grid has no evaluate:)'}")
        if not isinstance(part, dict) or not part:
            raise ConfigError(f"{where}.{name}", f"expected a non-empty mapping, got {part!r}")
        merged = dict(out[name])
        for key, value in part.items():
            both = isinstance(value, dict) and isinstance(merged.get(key), dict)
            merged[key] = {**merged[key], **value} if both else value
        out[name] = merged
    return check_evaluate(out)


def evaluate_at(spec: dict, scale: str | None) -> dict[str, dict]:
    """A grid spec's evaluations at `scale` (None: as written)."""
    if scale == "smoke" and spec.get("smoke") is not None:
        override, where = spec["smoke"], "smoke"
    else:
        override, where = (spec.get("scales") or {}).get(scale) or {}, f"scales.{scale}"
    return scaled(spec.get(KEY), (override or {}).get(KEY), f"{where}.{KEY}")


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
    if g["scorer"] is not None and not g["scorer"]:
        raise ConfigError(f"{where}.scorer", "expected a selector naming the scoring run, "
                          "e.g. {experiment: scorer}, got {}")
    return g


def check_decode_speed(value, where: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("prompt"), str) \
            or not value["prompt"]:
        raise ConfigError(where, f"expected a mapping with a non-empty prompt: TEXT and "
                          f"lengths: [N, ...], got {value!r}")
    for key in value:
        if key not in DECODE_SPEED:
            raise ConfigError(f"{where}.{key}", f"unknown key; valid: {', '.join(DECODE_SPEED)}")
    lengths = value.get("lengths")
    if not isinstance(lengths, list) or not lengths or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in lengths):
        raise ConfigError(f"{where}.lengths", f"expected a list of positive integers, got "
                          f"{lengths!r}")


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


def applies(spec: dict, entry: dict, config: dict) -> bool:
    """Does the evaluation's `where:` select this run? entry: its manifest entry (axes,
    bundle, ...); other dotted keys are read from the run's resolved config. A run shared
    by several experiments is selected when any of its memberships is."""
    return any(matches(run_view({**entry, **member}, config), spec.get("where"))
               for member in [{}, *(entry.get("shared") or [])])


def run_view(entry: dict, config: dict) -> dict:
    """What a selector can name of a stored run: its config's section.field values,
    then its manifest entry (bundle, seed, experiment), then its axes."""
    flat = {f"{s}.{k}": v for s, fields in config.items() if isinstance(fields, dict)
            for k, v in fields.items()}
    own = {k: v for k, v in entry.items() if k not in ("axes", "run_id", "label")}
    return {**flat, **own, **(entry.get("axes") or {})}


def scorers(selector: dict, seed, candidates) -> list:
    """The (entry, config) pairs among `candidates` that a generate: scorer selector
    names for a run of this seed: the judge of the same seed, so a grid run with one
    seed still has one."""
    return [(e, c) for e, c in candidates
            if c["train"].get("seed") == seed and applies({"where": selector}, e, c)]


SAME_TEXT = ("source", "tokenizer", "vocab_size")


def check_scorer(selector: dict, run_config: dict, found: list, where: str) -> None:
    """A scorer is exactly one other run, on the same text and vocabulary."""
    seed = run_config["train"].get("seed")
    if len(found) != 1:
        raise ConfigError(where, f"{selector} names {len(found)} runs of seed {seed}; it must "
                          "name exactly one (a run of the grid on the same text)")
    (entry, config), = found
    if config == run_config:
        raise ConfigError(where, f"{selector} names the sampling run itself: the scorer must "
                          "be another model (another experiment of the grid)")
    differs = [f"task.{k}" for k in SAME_TEXT
               if config["task"].get(k) != run_config["task"].get(k)]
    if config["model"].get("vocab_size") != run_config["model"].get("vocab_size"):
        differs.append("model.vocab_size")
    if differs:
        raise ConfigError(where, f"the scorer {entry.get('run_id', '')} differs in "
                          f"{', '.join(differs)}: it must read the same tokens")


def eval_config(resolved: dict, spec: dict, cache_dir=None) -> dict:
    """The run's resolved config with the evaluation's overrides, validated like any
    run config (ConfigError names the field)."""
    from ..config import resolve
    return resolve([resolved, overrides(spec)], cache_dir)


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
    from transformer.model import build_skeleton
    return {k: tuple(v.shape) for k, v in build_skeleton(model_cfg).state_dict().items()}


def missing(evaluate: dict, entry: dict, run_dir: Path, force: bool = False) -> list[str]:
    """Evaluations this finished-ok run lacks (or whose spec changed; all with force)."""
    run_dir = Path(run_dir)
    if not evaluate or not (run_dir / store.MODEL).is_file():
        return []
    try:
        result = store.read_result(run_dir)
    except (FileNotFoundError, store.Unreadable):
        return []
    if result.get("status") != "ok":
        return []
    config = result.get("config") or store.read_config(run_dir)
    return [n for n, s in evaluate.items()
            if applies(s, entry, config) and (force or not store.eval_is_current(run_dir, n, s))]
