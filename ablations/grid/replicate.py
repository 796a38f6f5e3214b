"""`ablate replicate GRID.yaml`: rerun the cells a grid's verdicts read on its held-out
seeds, and (text grids) on a second corpus, as its `replicate:` block declares.

Each replication is a grid folder of its own under the grid's results,
`results/<grid>/replication/seeds/` and `.../corpus/`, written and resumed exactly as
`ablate run` writes and resumes a grid (finished runs are skipped); its manifest lists
the checks it replicates. `ablate report` then judges those checks there and shows the
outcome beside each verdict (report/replication.py). The corpus replication runs the
held-out seeds too, so it differs from the seeds one only in the text. Which runs are
needed, and why tuned grids reuse their chosen rates: replication_spec.py.

`--seeds` and `--corpus` replace the block's seeds and corpus (validated as the block
is): a reviewer's own unseen seeds and text, with no edit to the grid file. The folders
then hold that replication, the one the report judges and names; the declared one's runs
stay under runs/ (counted as not this grid's, never read) and are found again, finished,
when it is replicated once more.
"""
from __future__ import annotations

import sys
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..posthoc import schedule
from ..posthoc.spec import applies
from ..report import tuning
from ..report.replication import FOLDER, NAMES, power_advice
from .estimate import Estimator, fmt_seconds
from .expand import expand
from .load import load
from .children import child_env
from .pool import GPU_LAYER, cpu_count, make_slots, parse_gpus, run_pool
from .replication_spec import (as_options, check_corpus, needed, on_corpus, overridden,
                               text_experiments)
from .dry_run import dry_run
from .runner import add_prune_option, parse_seeds, prepare, stale, summarize
from .spec import GridError
from ..plugins import add_plugin_option


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid spec (YAML) with a replicate: block")
    p.add_argument("--seeds", metavar="LIST", help="held-out seeds to use instead of the "
                   "grid's replicate.seeds: 1,2,3 or 7000-7002 (none of the grid's seeds)")
    p.add_argument("--corpus", metavar="SOURCE", help="second corpus to use instead of "
                   "the grid's replicate.corpus: shakespeare, python-docs, file:PATH, "
                   "hf:NAME[:CONFIG]")
    p.add_argument("--only", choices=("seeds", "corpus"),
                   help="one replication (default: the held-out seeds, then the corpus "
                        "where the grid names one)")
    p.add_argument("--results", type=Path, metavar="DIR",
                   help="results folder holding the grid's original results (default: "
                        "results/, or results-SCALE/ with --scale)")
    p.add_argument("--workers", type=int, metavar="N", help="runs at once (default 1)")
    p.add_argument("--devices", nargs="+", metavar="GPUS",
                   help="cpu (default); auto; or GPU ids, as for `ablate run`")
    p.add_argument("--scale", metavar="NAME", help="one of the grid's scales, as for "
                   "`ablate run` (the original results are then results-NAME/)")
    p.add_argument("--smoke", action="store_const", const="smoke", dest="scale",
                   help="the same as --scale smoke")
    p.add_argument("--dry-run", action="store_true",
                   help="list the replication's runs and their estimated time; train nothing")
    add_plugin_option(p)
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs whose result is 'failed'")
    add_prune_option(p)
    p.add_argument("--fresh-processes", action="store_true",
                   help="a fresh interpreter per run instead of a fork (as for `ablate run`)")


def main(args) -> int:
    path = Path(args.grid)
    results = args.results or Path(f"results-{args.scale}" if args.scale else "results")
    try:
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {args.workers}")
        gpus = parse_gpus(args.devices)
        grid = load(path, args.plugin)
        if not grid.spec.get("replicate") and args.seeds is None:
            raise ConfigError("replicate", "required: the grid declares no held-out seeds; "
                              "add replicate: {seeds: [...]} or pass --seeds")
        given = (args.seeds is not None, args.corpus is not None)
        grid = overridden(grid, parse_seeds(args.seeds) if given[0] else None, args.corpus)
        rep = grid.spec["replicate"]
        if args.only == "corpus" and "corpus" not in rep:
            raise ConfigError("replicate.corpus", "required for --only corpus: the grid "
                              "names no second corpus")
        kinds = [args.only] if args.only else ["seeds"] + (["corpus"] if "corpus" in rep
                                                          else [])
        chosen = tuning.chosen(store.grid_dir(results, grid.name), grid.name) \
            if grid.tuned and not rep.get("retune") else None
        with as_options(*given):
            plans = plan(grid, kinds, rep, chosen, results, args.scale, bool(gpus),
                         args.dry_run)
        workers = min(args.workers or 1, grid.workers or args.workers or 1)  # timing: 1
        slots = make_slots(gpus, workers, [r for p in plans for r in p["runs"]])
    except GridError:
        raise
    except ConfigError as e:
        raise GridError(path, str(e)) from None
    root = store.grid_dir(results, grid.name) / FOLDER
    print(f"{grid.name}: {power_advice(root.parent, len(rep['seeds']))}", file=sys.stderr)
    if args.dry_run:
        return show(grid, plans, results, root, args.scale, len(slots.envs))
    plugins = list(dict.fromkeys(grid.plugins + args.plugin))
    status = 0
    for p in plans:
        if not p["runs"]:
            print(f"{grid.name}: nothing to replicate on {NAMES[p['kind']]} (every check "
                  "is a sanity check, or none reads this replication)", file=sys.stderr)
            continue
        manifest = {"name": grid.name, "claim": grid.claim, "grid_file": str(path),
                    "spec": grid.spec, "runs": [r.manifest_entry() for r in p["runs"]],
                    "applied": {"scale": args.scale, "set": {}, "seeds": rep["seeds"],
                                "plugins": plugins},
                    "replication": {"kind": p["kind"], "checks": p["checks"],
                                    "seeds": rep["seeds"], "corpus": p["corpus"],
                                    "chosen": chosen, "retune": bool(rep.get("retune"))}}
        store.write_manifest(store.grid_dir(root, p["kind"]), manifest)
        stale(store.grid_dir(root, p["kind"]), p["runs"], args.prune)
        pending = prepare(p["runs"], root, p["kind"], args.retry_failed)
        label = f"{grid.name}/{FOLDER}/{p['kind']}"
        print(f"{label}: {len(p['runs'])} runs, {len(p['runs']) - len(pending)} already "
              f"finished, {len(pending)} to run -> {root / p['kind']}", file=sys.stderr,
              flush=True)
        run_pool(pending, label, slots, plugins, persistent=not args.fresh_processes)
        failed = schedule.run_missing(p["evaluate"], p["runs"], root, p["kind"],
                                      [child_env(env, plugins) for env in slots.envs])
        status = max(status, summarize(p["kind"], p["runs"], root) or int(failed > 0))
    print(f"{grid.name}: `ablate report {grid.name}` judges the replications",
          file=sys.stderr)
    return status


def plan(grid, kinds, rep, chosen, results, scale, on_gpu, dry) -> list[dict]:
    """Per replication: its runs, the checks it covers, its evaluations. Everything is
    expanded (and so validated) before anything runs."""
    cache = store.cache_dir(results)
    extra = GPU_LAYER if on_gpu else None
    runs = expand(grid, scale=scale, seeds=rep["seeds"], extra=extra, cache_dir=cache)
    evaluate = grid.evaluate_at(scale)
    kept, by_check = needed(grid.checks, runs, chosen, bool(rep.get("retune")))
    kept = schedule.with_scorers(evaluate, kept, runs)
    out = [{"kind": "seeds", "runs": kept, "corpus": None, "stand_in": False,
            "checks": [i for i, js in by_check.items() if js]}]
    if "corpus" in kinds:
        check_corpus(grid)
        text = {e.name for e in text_experiments(grid)}
        covered = [i for i, js in by_check.items()
                   if js and all(runs[j].experiment in text for j in js)]
        corpus, stand_in = rep["corpus"], False
        missing = corpus.startswith("file:") and not Path(corpus[5:]).expanduser().is_file()
        if missing and not dry:
            raise ConfigError("replicate.corpus", f"no such file: {corpus[5:]!r} (the second "
                              "corpus is not there yet; --only seeds replicates on the "
                              "held-out seeds alone)")
        # a dry run without the file yet: the original corpus stands in for its timing
        source = grid if missing else on_corpus(grid, corpus)
        stand_in = missing
        cruns = expand(source, scale=scale, seeds=rep["seeds"], extra=extra, cache_dir=cache)
        cruns = [r for r in cruns if r.experiment in text]
        ckept, _ = needed([c if i in covered else {**c, "sanity": True}
                           for i, c in enumerate(grid.checks)], cruns, chosen,
                          bool(rep.get("retune")))
        ckept = schedule.with_scorers(evaluate, ckept, cruns)
        out.append({"kind": "corpus", "runs": ckept, "corpus": corpus,
                    "stand_in": stand_in, "checks": covered})
    out = [p for p in out if p["kind"] in kinds]
    for p in out:
        # the evaluations that select some of these runs (the others have none to score)
        p["evaluate"] = {name: spec for name, spec in evaluate.items()
                         if any(applies(spec, r.manifest_entry(), r.config)
                                for r in p["runs"])}
        if not p["stand_in"]:
            schedule.check_runs(p["evaluate"], p["runs"], cache, data=not dry)
    return out


class CellTimes(Estimator):
    """Times a replication run from the original runs of its cell (same label: another
    seed, or the other corpus), then as `ablate run --dry-run` would; adds them up."""

    def __init__(self, original: Path, grid_dir: Path, cache, threads: int):
        super().__init__(grid_dir, cache, threads)
        self.cells: dict[tuple, list[float]] = {}
        try:
            entries = store.read_manifest(original).get("runs") or []
        except (OSError, store.Unreadable):
            entries = []
        for e in entries:
            try:
                res = store.read_result(store.runs_dir(original) / e["run_id"])
            except (OSError, store.Unreadable, KeyError):
                continue
            if res.get("status") == "ok" and res.get("wall_s"):
                key = (e.get("experiment"), e.get("label"))
                self.cells.setdefault(key, []).append(float(res["wall_s"]))
        self.total = self.left = 0.0

    def _seconds(self, run, params, device, status):
        same = self.cells.get((run.experiment, run.label)) if status == "pending" else None
        secs, how = (sum(same) / len(same), "cell") if same else \
            super()._seconds(run, params, device, status)
        self.total += secs
        self.left += secs if status == "pending" else 0.0
        return secs, how


def show(grid, plans, results: Path, root: Path, scale, workers: int) -> int:
    """The dry run: each replication's runs and time, then the grid's total."""
    original = store.grid_dir(results, grid.name)
    cache = store.cache_dir(results)
    matched = list(dict.fromkeys(e.match["by"] for e in grid.experiments if e.match))
    total = left = 0.0
    for p in plans:
        what = NAMES[p["kind"]] + (f" ({p['corpus']})" if p["corpus"] else "")
        print(f"== {grid.name}: replication on {what}, seeds {grid.spec['replicate']['seeds']}"
              f", checks {', '.join(str(i + 1) for i in p['checks']) or 'none'}")
        if p["stand_in"]:
            print(f"   {p['corpus']} does not exist yet: the original corpus stands in "
                  "(run ids and parameter counts will differ; the time is the original's)")
        if not p["runs"]:
            print(f"{grid.name}: nothing to replicate on {NAMES[p['kind']]}")
            continue
        est = CellTimes(original, root / p["kind"], cache if cache.exists() else None,
                        max(1, cpu_count() // max(1, workers)))
        dry_run(p["kind"], p["runs"], root, matched, scale, workers, estimator=est)
        total, left = total + est.total, left + est.left
    print(f"{grid.name}: replication estimated {fmt_seconds(total)} of run time in all, "
          f"{fmt_seconds(left / max(1, workers))} left with {workers} worker(s)")
    return 0
