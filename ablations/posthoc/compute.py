"""Post-hoc evaluation: score a trained run's weights under other settings, no retraining.

`ablate _evaluate RUN_DIR [RUN_DIR ...]` computes the evaluations that the grid's
`evaluate:` key (read from the grid's manifest.json) asks of each run and that the run
lacks, writing runs/<id>/evals/<NAME>.json atomically; `ablate run` calls it after its
runs. The spec and the selection of runs live in spec.py.

One evaluation: load model.pt, rebuild the model from the run's model config with the
overrides (the same state_dict, loaded strictly: a shape change is refused before
anything runs), build the task with its overrides and the run's seed, and average the
task's metrics over each of its val sets: the same names as training's final
evaluation (val_loss, val_acc, val_loss@256, ...); an evaluation without overrides
(only `generate:`) stores no metrics, they would repeat the run's own. With
`generate:`, it samples text from a fixed prompt (seeded: reruns write the same) and
scores the samples' diversity and likelihood; with `decode_speed:` it times the KV
cache against recomputation (decoding.py).

Plain torch, no Lightning: an evaluation costs about a second plus the interpreter.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from transformer.validation import ConfigError

from .. import plugins, store
from .spec import (check_evaluate, check_scorer, check_shapes, eval_config, evaluate_at,
                   generation, missing, overrides, scorers)


def add_arguments(p) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    p.add_argument("--eval", dest="specs", action="append", default=[], metavar="NAME=JSON",
                   help="evaluate this instead of the grid's evaluate: (repeatable), e.g. "
                        "causal='{\"model.causal\": true}'")
    p.add_argument("--force", action="store_true", help="recompute evaluations already stored")


def main(args) -> int:
    plugins.import_from_env()
    given = parse_specs(args.specs) if args.specs else None
    failed = 0
    for run_dir in map(Path, args.run_dirs):
        evaluate, entry = grid_spec(run_dir) if given is None else (given, {})
        todo = missing(evaluate, entry, run_dir, force=args.force)
        for name in todo:
            try:
                data = evaluate_run(run_dir, name, evaluate[name])
            except Exception as e:            # one bad evaluation never stops the others
                failed += 1
                print(f"{run_dir.name}: evaluation {name!r} failed: "
                      f"{type(e).__name__}: {e}".splitlines()[0][:500], file=sys.stderr)
                continue
            shown = ", ".join(f"{k}={v:.4g}" for k, v in data["metrics"].items()
                              if isinstance(v, float))
            print(f"{run_dir.name}: {name} in {data['wall_s']:.1f}s {shown}", file=sys.stderr)
    return 1 if failed else 0


def parse_specs(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            out[name] = json.loads(text) if sep else None
        except ValueError as e:
            raise ConfigError("--eval", f"expected NAME=JSON, got {item!r} ({e})") from None
    return check_evaluate(out)


def grid_spec(run_dir: Path) -> tuple[dict, dict]:
    """The grid's evaluate: and this run's manifest entry (runs/<id> -> ../../manifest)."""
    try:
        manifest = store.read_manifest(store.grid_dir_of(run_dir))
    except FileNotFoundError:
        return {}, {}
    # at the scale the grid ran at (a smoke scale may draw fewer samples)
    evaluate = evaluate_at(manifest.get("spec") or {}, (manifest.get("applied") or {}).get("scale"))
    entry = next((e for e in manifest.get("runs", []) if e.get("run_id") == run_dir.name), {})
    return evaluate, entry


def cache_dir(run_dir: Path) -> Path:
    return store.cache_dir(store.results_of(run_dir))


def evaluate_run(run_dir: Path, name: str, spec: dict) -> dict:
    """Compute one evaluation of one finished run and store it; returns what it wrote."""
    import torch

    from ..tasks import task_of
    from ..training.scoring import score

    started = time.time()
    run_dir = Path(run_dir)
    resolved = store.read_config(run_dir)
    changed = overrides(spec)
    cfg = eval_config(resolved, spec, cache_dir(run_dir))
    check_shapes(resolved["model"], cfg["model"])
    if cfg["train"].get("threads"):
        torch.set_num_threads(cfg["train"]["threads"])
    _, net = store.read_model(run_dir, cfg["model"])
    seed = cfg["train"]["seed"]
    task = task_of(cfg, cache_dir(run_dir))
    out = {"name": name, "spec": spec, "run_id": run_dir.name, "config": cfg, "metrics": {}}
    if any(changed.values()):     # with none, the metrics would repeat the run's own
        val_sets = task.val_sets(cfg["train"]["eval_batches"], cfg["train"]["batch_size"], "cpu")
        out["metrics"] = score(net, task, val_sets)
    if "generate" in spec:
        selector = spec["generate"].get("scorer")
        judge = scorer_model(run_dir, resolved, selector) if selector else None
        out["samples"], quality = sample(net, task, cfg, spec["generate"], seed, name, judge)
        out["metrics"].update(quality)
    if "decode_speed" in spec:
        from ..tasks.text import prompt_ids
        from .decoding import decode_speed
        ids = prompt_ids(cfg, spec["decode_speed"]["prompt"], task.cache_dir)
        out["metrics"].update(decode_speed(net, torch.tensor([ids], dtype=torch.long),
                                           spec["decode_speed"]["lengths"]))
    out["wall_s"] = time.time() - started
    out["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    store.write_eval(run_dir, name, out)
    return out


def scorer_model(run_dir: Path, resolved: dict, selector: dict):
    """The trained network of the run `selector` names beside this one (same seed, same
    text: spec.check_scorer), read from the grid's manifest and the runs' configs."""
    grid_dir = store.grid_dir_of(run_dir)
    try:
        entries = store.read_manifest(grid_dir).get("runs", [])
    except FileNotFoundError:
        raise ValueError(f"a scorer ({selector}) is a run of the grid, and {run_dir} is in "
                         "no grid (no manifest.json)") from None
    candidates = []
    for entry in entries:
        other = run_dir.parent / entry["run_id"]
        if (other / store.RESULT).is_file():
            candidates.append((entry, store.read_config(other)))
    found = scorers(selector, resolved["train"].get("seed"), candidates)
    check_scorer(selector, resolved, found, "generate.scorer")
    other = run_dir.parent / found[0][0]["run_id"]
    if store.read_result(other).get("status") != "ok" or not (other / store.MODEL).is_file():
        raise ValueError(f"the scorer run {other.name} has not finished ok with its weights")
    _, judge = store.read_model(other, found[0][1]["model"])
    return judge


def sample(net, task, cfg: dict, generate: dict, seed: int, name: str,
           judge=None) -> tuple[list[dict], dict[str, float]]:
    """Seeded samples from the prompt, and their diversity and quality (decoding.py). A
    causal model decodes with its KV cache; a bidirectional one, or a prefix LM whose
    prefix the prompt does not fill, recomputes the whole sequence each step (its last
    position never sees past the end, so what it generates is what it can honestly
    predict)."""
    import torch

    from ..tasks.base import stable_seed
    from ..tasks.text import prompt_ids
    from .decoding import sample_metrics
    g = generation(generate)
    ids = torch.tensor([prompt_ids(cfg, g["prompt"], task.cache_dir)], dtype=torch.long)
    gen = torch.Generator().manual_seed(stable_seed("posthoc", name, seed))
    use_cache = (bool(cfg["model"].get("causal", True))
                 and cfg["model"].get("prefix_len", 0) <= ids.shape[1])
    out, made = [], []
    for _ in range(g["samples"]):
        try:
            tokens = net.generate(ids, g["max_new_tokens"], temperature=g["temperature"],
                                  top_k=g["top_k"], top_p=g["top_p"], use_cache=use_cache,
                                  generator=gen)
            out.append({"prompt": g["prompt"], "text": task.decode(tokens[0, ids.shape[1]:])})
            made.append(tokens)
        except ValueError as e:               # e.g. past a learned PE table
            out.append({"prompt": g["prompt"], "text": "", "error": str(e)})
    return out, (sample_metrics(net, ids, made, judge) if made else {})


if __name__ == "__main__":                     # python -m ablations.training.posthoc RUN_DIR
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
