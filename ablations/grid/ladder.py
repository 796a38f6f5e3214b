"""Scale ladders: the same cells at several model sizes, each trained on a budget that
grows with the model, so that a report can ask whether an effect grows, shrinks, holds
or flips as models grow (report/trend.py judges it).

    ladder:
      sizes:                         # named model shapes, smallest first (at least 3)
        xs: {model.d_model: 32, model.n_layers: 2}
        s:  {model.d_model: 64, model.n_layers: 2}
        m:  {model.d_model: 128, model.n_layers: 2}
      tokens_per_param: 4            # the budget rule (below)
      min_steps: 100                 # optional floor on a run's steps

A ladder multiplies an experiment's cells like an axis named `size` (selectors say
`size: m`, labels begin with `size=m`, tuned variants are chosen per size). The budget
rule, the same at every size (Kaplan et al. 2020; Chinchilla's fixed tokens per
parameter): N_s is the mean non-embedding parameter count over the experiment's cells at
size s (token and positional embeddings and the output projection left out: they scale
with the vocabulary and the context, not the model), every cell of that size trains on
T_s = tokens_per_param x N_s tokens, and a cell's train.steps is max(min_steps, ceil(T_s
/ tokens per step)), tokens per step = batch_size x the positions its task feeds per
sequence, and its warmup is at most a third of those steps (so that the short runs at
the bottom of a ladder reach their peak learning rate; it binds only where the budget is
shorter than three warmups). One N_s per size keeps the variants of a size on one
budget: a variant with fewer parameters (no FFN) is not also given less data. A scale's
`ladder:` replaces the ladder of every experiment that has one (`gpu` carries the ladder
upward; `smoke` makes it tiny); its sizes are written after the scale's other settings,
so a scale cannot collapse them into one model.
"""
from __future__ import annotations

import math
import re

from transformer.validation import ConfigError

__all__ = ["check_ladder", "nonembedding_params", "budget", "steps_for",
           "tokens_per_step", "size_table", "KEYS"]

KEYS = ("sizes", "tokens_per_param", "min_steps")
MIN_SIZES = 3
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_ladder(where: str, ladder, check_key) -> None:
    """The `ladder:` mapping's structure; `check_key(where, key)` validates a
    section.field key (config.check_key, wrapped by the caller)."""
    if not isinstance(ladder, dict):
        raise ConfigError(where, "expected a mapping like {sizes: {s: {model.d_model: 32}, "
                          f"...}}, tokens_per_param: 4}}, got {type(ladder).__name__}")
    for key in ladder:
        if key not in KEYS:
            raise ConfigError(f"{where}.{key}", f"unknown key; valid: {', '.join(KEYS)}")
    sizes = ladder.get("sizes")
    if not isinstance(sizes, dict) or len(sizes) < MIN_SIZES:
        raise ConfigError(f"{where}.sizes", f"expected at least {MIN_SIZES} named sizes "
                          "(a trend needs three points), e.g. {xs: {model.d_model: 32}, "
                          f"s: {{model.d_model: 64}}, m: {{model.d_model: 128}}}}, got {sizes!r}")
    shapes = []
    for name, shape in sizes.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{where}.sizes", f"bad size name {name!r}")
        if not isinstance(shape, dict) or not shape:
            raise ConfigError(f"{where}.sizes.{name}", "expected a non-empty mapping of "
                              "section.field: value, e.g. {model.d_model: 64}")
        for key in shape:
            check_key(f"{where}.sizes.{name}", key)
            if key == "train.steps":
                raise ConfigError(f"{where}.sizes.{name}", "train.steps is derived from "
                                  "tokens_per_param (the budget rule); set that instead")
        shapes.append(sorted(shape.items(), key=str))
    if any(shapes.count(s) > 1 for s in shapes):
        raise ConfigError(f"{where}.sizes", "two sizes set the same shape")
    ratio = ladder.get("tokens_per_param")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ConfigError(f"{where}.tokens_per_param", "required: tokens trained per "
                          f"non-embedding parameter (a positive number), got {ratio!r}")
    floor = ladder.get("min_steps", 1)
    if isinstance(floor, bool) or not isinstance(floor, int) or floor < 1:
        raise ConfigError(f"{where}.min_steps", f"expected a positive integer, got {floor!r}")


def nonembedding_params(model_cfg: dict) -> int:
    """Parameters outside the token and positional embeddings and the output projection
    (counted once when tied), built on the meta device: Kaplan et al.'s N."""
    import torch.nn as nn

    from transformer.model import build_skeleton
    model = build_skeleton(model_cfg)
    skip = {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
            for p in m.parameters()}
    skip |= {id(p) for p in model.head.parameters()} if hasattr(model, "head") else set()
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in skip:
            total += p.numel()
        seen.add(id(p))
    return total


def tokens_per_step(config: dict) -> int:
    """Tokens one training step reads: batch_size x the positions per sequence."""
    from ..tasks import TASKS, make_params
    task = config["task"]
    cls = TASKS.get(task["name"])
    return config["train"]["batch_size"] * cls.max_positions(make_params(cls, task),
                                                            config["model"]["arch"])


def steps_for(ladder: dict, size_params: float, config: dict) -> int:
    """The budget rule: max(min_steps, ceil(tokens_per_param x N_s / tokens per step))."""
    budget = float(ladder["tokens_per_param"]) * size_params
    return max(int(ladder.get("min_steps", 1)), math.ceil(budget / tokens_per_step(config)))


def budget(ladder: dict, size_params: float, config: dict) -> dict:
    """The train settings a size's budget sets on a cell: its steps, and its warmup
    capped at a third of them (a warmup as long as the run would never reach the peak
    rate the tuner chose)."""
    steps = steps_for(ladder, size_params, config)
    warmup = config["train"].get("warmup", 0)
    return {"steps": steps, **({"warmup": steps // 3} if warmup > steps // 3 else {})}


def size_table(runs, seconds: dict[str, float]) -> list[tuple]:
    """Rows for --dry-run, one per (experiment, size) in grid order: N_s, the steps and
    tokens of its runs, tokens per parameter, runs, and their estimated seconds (summed
    from `seconds`: run id -> estimate)."""
    rows: dict[tuple, dict] = {}
    for run in runs:
        for member in run.members():
            if member.size is None:
                continue
            row = rows.setdefault((member.experiment, member.size), {
                "n": member.size_params, "steps": set(), "tokens": set(), "runs": 0,
                "s": 0.0})
            train = run.config["train"]
            row["steps"].add(train["steps"])
            row["tokens"].add(train["steps"] * tokens_per_step(run.config))
            row["runs"] += 1
            row["s"] += seconds.get(run.run_id, 0.0)
    out = []
    for (exp, size), r in rows.items():
        span = (lambda xs: f"{min(xs):,}" if len(xs) == 1 else f"{min(xs):,}-{max(xs):,}")
        out.append((exp or "", size, f"{r['n']:,}", span(r["steps"]), span(r["tokens"]),
                    f"{min(r['tokens']) / max(1, r['n']):.1f}", str(r["runs"]), r["s"]))
    return out
