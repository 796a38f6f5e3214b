"""`ablate run GRID.yaml`: validate a whole grid, then train every run it still lacks.

Each run is one process (forked by its slot's persistent worker, or a fresh
`python -m ablations _run_one RUN_DIR`; see pool.py), which takes the run's lock
(<run_dir>/.lock), resumes from its last checkpoint and writes result.json last.
All state lives on disk, so a runner killed at any moment loses at most the steps since
each run's last checkpoint: the same command again skips finished runs, resumes the
rest, and never trains one run twice at once (the lock), even with two runners.

Test hook: ABLATE_RUN_ONE_CMD (a shell-quoted command; the run dir is appended)
replaces `python -m ablations _run_one`.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..posthoc import schedule
from .expand import expand
from ..config import add_set_option, parse_sets
from .. import plugins
from . import limits
from .load import load
from .spec import GridError
from .children import Workers, child_env
from .dry_run import dry_run
from .pool import (GPU_LAYER, make_slots, one_line, parse_gpus,
                   record_unwritable, run_pool, slurm_slots)


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid spec (YAML), e.g. ablations/grids/positional_order.yaml")
    p.add_argument("--results", type=Path, metavar="DIR",
                   help="results folder (default: results/, or results-SCALE/ with --scale)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="runs at once (default: 1 on CPU, one per GPU slot with --devices)")
    p.add_argument("--devices", nargs="+", metavar="GPUS",
                   help="cpu (default); auto (every visible GPU); or GPU ids (0,1,2,3 or "
                        "0 1 2 3): one slot per train.devices GPUs, e.g. with --set "
                        "train.devices=2 train.strategy=ddp two slots of two GPUs")
    p.add_argument("--scale", metavar="NAME",
                   help="apply one of the grid's scales: smoke (tiny, for CI), gpu "
                        "(research size), ...; results go to results-NAME/")
    p.add_argument("--smoke", action="store_const", const="smoke", dest="scale",
                   help="the same as --scale smoke")
    p.add_argument("--dry-run", action="store_true",
                   help="list every run and build its model; train and write nothing")
    p.add_argument("--seeds", metavar="LIST", help="replace the grid's seeds: 1,2,3 or 0-4")
    add_set_option(p, "train.steps=100 train.lr=3e-3 (in every run)")
    plugins.add_plugin_option(p)
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs whose result is 'failed' (not 'diverged')")
    add_prune_option(p)
    p.add_argument("--retrain-damaged", action="store_true",
                   help="train again from step 0 the runs whose result.json, metrics.csv "
                        "or model.pt is damaged (what it is checked against: result.json)")
    p.add_argument("--ignore-memory", action="store_true",
                   help="run even when a run's estimated memory exceeds what this machine "
                        "has available (refused by default, exit 2)")
    p.add_argument("--fresh-processes", action="store_true",
                   help="start a fresh interpreter per run instead of forking it from the "
                        "slot's persistent worker (same numbers, ~2.5 s more a run)")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: a slot pool on this machine; slurm: a submitit job array")
    s = p.add_argument_group("slurm (--executor slurm; needs the 'slurm' extra)")
    s.add_argument("--partition", help="SLURM partition")
    s.add_argument("--time", type=int, default=240, metavar="MIN",
                   help="time limit per array task, minutes (default 240)")
    s.add_argument("--gpus-per-task", type=int, default=0, metavar="N",
                   help="GPUs per array task (at least train.devices; default 0: CPU)")
    s.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                   help="CPUs per array task (also the run's thread count)")
    s.add_argument("--array-parallelism", type=int, default=64, metavar="N",
                   help="array tasks running at once (default 64)")
    s.add_argument("--runs-per-task", type=int, default=1, metavar="N",
                   help="runs per array task, forked from one persistent worker (imports "
                        "torch once per task; default 1)")
    s.add_argument("--wait", action="store_true",
                   help="wait for the array to finish and print the summary")
    s.add_argument("--submitit-cluster", choices=("slurm", "local", "debug"), default="slurm",
                   help="submitit back end; local/debug run the array on this machine "
                        "(for testing the SLURM path without a cluster)")


def main(args) -> int:
    warm: list = []                  # slot workers started before the grid expands
    try:
        return _run(args, warm)
    finally:
        for workers in warm:
            workers.close()


def _run(args, warm: list) -> int:
    path = Path(args.grid)
    results = args.results or Path(f"results-{args.scale}" if args.scale else "results")
    try:
        sets = parse_sets(args.sets)
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {args.workers}")
        gpus = parse_gpus(args.devices)
        if args.executor == "slurm":
            from . import slurm
            slurm.check(args.submitit_cluster)
        on_gpu = bool(gpus) if args.executor == "local" else args.gpus_per_task > 0
        grid = load(path, args.plugin)
        workers = args.workers
        if grid.workers:                         # e.g. a timing grid: runs must not share
            workers = min(workers or grid.workers, grid.workers)
        if args.executor == "local" and not (gpus or args.dry_run or args.fresh_processes):
            warm.append(Workers(make_slots([], workers, []),
                                plugins.names(grid.plugins + args.plugin)))
            warm[0].start_all()                  # they import torch while we expand
        runs = expand(grid, scale=args.scale, sets=sets, seeds=seeds,
                      extra=GPU_LAYER if on_gpu else None, cache_dir=store.cache_dir(results))
        schedule.check_runs(grid.evaluate_at(args.scale), runs, store.cache_dir(results),
                           data=not args.dry_run)
        if args.executor == "slurm":
            slots = slurm_slots(args.gpus_per_task, args.cpus_per_task, runs)
        else:
            slots = make_slots(gpus, workers, runs)
        if not args.dry_run and args.executor == "local":
            limits.check(runs, on_gpu, args.ignore_memory)
    except GridError:
        raise
    except ConfigError as e:
        raise GridError(path, str(e)) from None
    modules = plugins.names(grid.plugins + args.plugin)   # files and grid-relative: modules
    if args.dry_run:
        matched = list(dict.fromkeys(e.match["by"] for e in grid.experiments if e.match))
        return dry_run(grid.name, runs, results, matched, args.scale, len(slots.envs))

    gdir = store.grid_dir(results, grid.name)
    manifest = {
        "name": grid.name, "claim": grid.claim, "grid_file": str(path), "spec": grid.spec,
        "applied": {"scale": args.scale, "set": sets, "seeds": seeds, "plugins": modules},
        "runs": [r.manifest_entry() for r in runs]}
    store.write_manifest(gdir, manifest)
    stale(gdir, runs, args.prune)
    notes: dict[str, tuple[str, str]] = {}
    pending = prepare(runs, results, grid.name, args.retry_failed, args.retrain_damaged, notes)
    print(f"{grid.name}: {len(runs)} runs, {len(runs) - len(pending)} already finished, "
          f"{len(pending)} to run ({slots.describe(args.executor)}) -> {gdir}",
          file=sys.stderr, flush=True)
    if args.executor == "slurm":
        if not slurm.submit(pending, grid.name, gdir, slots, modules, args):
            return 0
    else:
        notes.update(run_pool(pending, grid.name, slots, modules,
                              persistent=not args.fresh_processes,
                              workers=warm[0] if warm else None))
    # post-hoc evaluations that finished runs lack (posthoc/spec.py); never retrains
    failed_evals = schedule.run_missing(grid.evaluate_at(args.scale), runs, results,
                                        grid.name, [child_env(env, modules)
                                                    for env in slots.envs])
    return summarize(grid.name, runs, results, notes) or int(failed_evals > 0)


def add_prune_option(p) -> None:
    p.add_argument("--prune", action="store_true",
                   help="delete the run folders the grid no longer has (an earlier version "
                        "of it, or other --seeds / --set); without it they are counted, "
                        "kept and never read")


def stale(gdir: Path, runs, prune: bool) -> None:
    """Say how many run folders the grid as it now stands does not have; delete them
    with --prune (never one that another process is training)."""
    old = store.stale_runs(gdir, (r.run_id for r in runs))
    if not old:
        return
    if not prune:
        print(f"{gdir}: {len(old)} run folder(s) under runs/ are not runs of this grid as "
              "it now stands (an earlier version of it, or other --seeds / --set); the "
              "report does not read them. --prune deletes them", file=sys.stderr)
        return
    kept = [p.name for p in old if not store.remove_run(p)]
    print(f"{gdir}: deleted {len(old) - len(kept)} run folder(s) this grid no longer has"
          + (f"; kept {len(kept)} another process is training ({', '.join(kept)})"
             if kept else ""), file=sys.stderr)


def prepare(runs, results: Path, name: str, retry_failed: bool,
            retrain_damaged: bool = False, notes: dict | None = None) -> list:
    """Write each unfinished run's config.json; return the (run, run_dir) still to do.
    A finished run's files are checked against its result.json: a damaged one is left
    as it is (the summary names it) unless `retrain_damaged`. A run whose folder cannot
    be written is that run's failure, noted in `notes`, not the grid's."""
    pending = []
    for run in runs:
        rd = store.run_dir(results, name, run.run_id)
        if store.is_done(rd):
            status = store.status_of(rd, verify=True)[0]
            if retrain_damaged and status == store.DAMAGED:
                store.clear_run(rd)
            elif retry_failed and status == "failed":
                store.clear_result(rd)       # the old reason stays in its stderr.log
            else:
                continue
        try:
            store.write_config(rd, run.config)
        except OSError as e:
            if notes is None:
                raise
            notes[run.run_id] = ("failed", record_unwritable(rd, e))
            continue
        pending.append((run, rd))
    return pending


def summarize(name: str, runs, results: Path, notes: dict | None = None) -> int:
    """One line of counts; one line per run that did not finish ok. 1 if a run failed
    (crashed), is damaged or unfinished; a diverged run is a result and counts as done.
    `notes`: run id -> (status, reason) for outcomes the disk does not show (a run
    interrupted by a kill, a failure that could not be recorded)."""
    counts: dict[str, int] = {}
    bad = []
    for run in runs:
        status, reason = store.status_of(store.run_dir(results, name, run.run_id),
                                         verify=True)
        if status == "pending" and run.run_id in (notes or {}):
            status, reason = notes[run.run_id]
        counts[status] = counts.get(status, 0) + 1
        if status not in ("ok", "pending"):
            # a damaged run's reason ends with what to do: never cut it off
            bad.append(f"  {status:<9} {run.run_id}  {run.label} seed={run.seed}: "
                       f"{one_line(reason, 600 if status == store.DAMAGED else 160)}")
    parts = ", ".join(f"{counts[s]} {s}" for s in ("ok", "diverged", "failed",
                                                    store.DAMAGED, "interrupted", "pending")
                      if counts.get(s))
    print(f"{name}: {len(runs)} runs: {parts}", file=sys.stderr)
    if bad:
        print("runs that did not finish ok:\n" + "\n".join(bad), file=sys.stderr)
    if counts.get("interrupted"):
        print(f"{counts['interrupted']} run(s) were interrupted (killed): run the same "
              "command again to resume them from their checkpoints", file=sys.stderr)
    if counts.get("pending"):
        print(f"{counts['pending']} runs are unfinished (running in another process, or "
              f"submitted): run the same command again to collect them", file=sys.stderr)
    if counts.get("failed"):
        print(f"{counts['failed']} failed run(s) stay failed on a rerun; add --retry-failed "
              "to train them again", file=sys.stderr)
    if counts.get(store.DAMAGED):
        print(f"{counts[store.DAMAGED]} damaged run(s) are left out of the report: delete "
              "their runs/<id> folder, or add --retrain-damaged, to train them again",
              file=sys.stderr)
    return 1 if any(counts.get(s) for s in ("failed", store.DAMAGED, "interrupted",
                                             "pending")) else 0


def parse_seeds(text: str) -> list[int]:
    """'1,2,3' or '0-4' -> list of ints (the --seeds option)."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError("--seeds", f"expected e.g. 1,2,3 or 0-4, got {text!r}")
        lo, hi = int(m[1]), int(m[2] or m[1])
        out += range(lo, hi + 1)
    if not out:
        raise ConfigError("--seeds", "no seeds given")
    return list(dict.fromkeys(out))
