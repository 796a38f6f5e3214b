"""The runner's side of post-hoc evaluations (`evaluate:`, see spec.py):
check them before anything runs, and compute the ones finished runs lack after the pool
(`ablate _evaluate RUN_DIR ...`, one child per slot), never retraining."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..procs import die_with_parent, wait_all
from .spec import (KEY, applies, check_evaluate, check_scorer, check_shapes, eval_config,
                   missing, scorers)


def check_runs(evaluate: dict | None, runs, cache_dir=None, data: bool = True) -> None:
    """Before anything runs: every evaluation selects some run, resolves on each run it
    selects, keeps every parameter shape, and (with `data`: not in a dry run, which must
    not need the corpus) builds its task and can generate where it asks to."""
    evaluate = check_evaluate(evaluate)
    checked: dict[str, None] = {}
    candidates = [(r.manifest_entry(), r.config) for r in runs]      # what a scorer names
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
                selector = (spec.get("generate") or {}).get("scorer")
                if selector:
                    check_scorer(selector, run.config,
                                 scorers(selector, run.config["train"].get("seed"), candidates),
                                 "generate.scorer")
                if not data:
                    continue
                from ..tasks import task_of             # e.g. crops longer than the text
                task_of(cfg, cache_dir, seed=0)
                for key in ("generate", "decode_speed"):
                    if key in spec:
                        from ..tasks.text import prompt_ids
                        prompt_ids(cfg, spec[key]["prompt"], cache_dir)
            except ConfigError as e:
                raise ConfigError(f"{KEY}.{name}", f"run {run.run_id} ({run.label}): {e}") \
                    from None


def with_scorers(evaluate: dict | None, kept: list, runs: list) -> list:
    """`kept` and the runs that their `generate: scorer:` evaluations name among `runs`:
    a replication reruns the cells its checks read and their judges."""
    out, ids = list(kept), {r.run_id for r in kept}
    by_id = {r.run_id: r for r in runs}
    candidates = [(r.manifest_entry(), r.config) for r in runs]
    for spec in check_evaluate(evaluate).values():
        selector = (spec.get("generate") or {}).get("scorer")
        if not selector:
            continue
        for run in [r for r in kept if applies(spec, r.manifest_entry(), r.config)]:
            for entry, _ in scorers(selector, run.config["train"].get("seed"), candidates):
                if entry["run_id"] not in ids:
                    out.append(by_id[entry["run_id"]])
                    ids.add(entry["run_id"])
    return out


def run_missing(evaluate: dict | None, runs, results: Path, grid: str,
                envs: list[dict]) -> int:
    """Compute every evaluation that finished ok runs lack: `ablate _evaluate RUN_DIR...`
    in one child per slot, each with its slot's environment `envs` (the runs' own
    `train.threads` apply). Returns the number of evaluations still missing afterwards
    (failed: each printed one line)."""
    evaluate = check_evaluate(evaluate)

    def lacking() -> dict[Path, list[str]]:
        """Run dir -> the evaluations it lacks (reads each result.json once)."""
        out = {}
        for run in runs:
            rd = store.run_dir(results, grid, run.run_id)
            names = missing(evaluate, run.manifest_entry(), rd)
            if names:
                out[rd] = names
        return out

    todo = lacking()
    damaged = 0
    for rd in list(todo):  # evaluating damaged weights again cannot help: retrain them
        problem = store.integrity.model_problem(rd, store.read_result(rd))
        if problem:
            print(f"{grid}: evaluations of {rd.name} not computed: {problem}", file=sys.stderr)
            damaged += len(todo.pop(rd))
    if not todo:
        return damaged
    print(f"{grid}: {sum(map(len, todo.values()))} post-hoc evaluation(s) of {len(todo)} "
          f"run(s)", file=sys.stderr, flush=True)
    todo = list(todo)
    envs = envs or [{}]
    chunks = [todo[i::len(envs)] for i in range(min(len(envs), len(todo)))]
    cmd = [sys.executable, "-m", "ablations", "_evaluate"]
    procs = []
    try:
        for chunk, env in zip(chunks, envs):
            procs.append(subprocess.Popen(cmd + [str(d) for d in chunk], env=env,
                                          preexec_fn=die_with_parent))
        wait_all(procs)
    finally:              # interrupted (Ctrl-C, SIGTERM): no evaluation outlives the runner
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    left = sum(len(names) for rd, names in lacking().items() if rd in todo)
    if left:
        print(f"{grid}: {left} post-hoc evaluation(s) failed (see above); the next "
              "`ablate run` tries them again", file=sys.stderr)
    return left + damaged
