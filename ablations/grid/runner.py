"""`ablate run GRID.yaml`: validate a whole grid, then train every run it still lacks.

Each run is one subprocess, `python -m ablations _run_one RUN_DIR`, which takes the run's
lock (<run_dir>/.lock), resumes from its last checkpoint and writes result.json last.
All state lives on disk, so a runner killed at any moment loses at most the steps since
each run's last checkpoint: the same command again skips finished runs, resumes the
rest, and never trains one run twice at once (the lock), even with two runners.

Test hook: ABLATE_RUN_ONE_CMD (a shell-quoted command; the run dir is appended)
replaces `python -m ablations _run_one`.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from transformer.config import ConfigError

from . import spec as grids
from .. import evals, store
from ..config import parse_sets
from .spec import GridError
from .pool import (GPU_LAYER, make_slots, one_line, parse_gpus, run_pool, slurm_slots,
                   status_of)


def add_arguments(p) -> None:
    p.add_argument("grid", help="grid spec (YAML), e.g. ablations/grids/positional_order.yaml")
    p.add_argument("--results", type=Path, metavar="DIR",
                   help="results folder (default: results/, or results-smoke/ with --smoke)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="runs at once (default: 1 on CPU, one per GPU slot with --devices)")
    p.add_argument("--devices", nargs="+", metavar="GPUS",
                   help="cpu (default); auto (every visible GPU); or GPU ids (0,1,2,3 or "
                        "0 1 2 3): one slot per train.devices GPUs, e.g. with --set "
                        "train.devices=2 train.strategy=ddp two slots of two GPUs")
    p.add_argument("--smoke", action="store_true",
                   help="apply the grid's smoke overrides (tiny runs, for CI)")
    p.add_argument("--dry-run", action="store_true",
                   help="list every run and build its model; train and write nothing")
    p.add_argument("--seeds", metavar="LIST", help="replace the grid's seeds: 1,2,3 or 0-4")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a field in every run, e.g. train.steps=100")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import a module that registers variants (repeatable)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run again the runs whose result is 'failed' (not 'diverged')")
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
    s.add_argument("--wait", action="store_true",
                   help="wait for the array to finish and print the summary")
    s.add_argument("--submitit-cluster", choices=("slurm", "local", "debug"), default="slurm",
                   help="submitit back end; local/debug run the array on this machine "
                        "(for testing the SLURM path without a cluster)")


def main(args) -> int:
    path = Path(args.grid)
    results = args.results or Path("results-smoke" if args.smoke else "results")
    try:
        sets = parse_sets(args.set)
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {args.workers}")
        gpus = parse_gpus(args.devices)
        if args.executor == "slurm":
            from . import slurm
            slurm.check(args.submitit_cluster)
        on_gpu = bool(gpus) if args.executor == "local" else args.gpus_per_task > 0
        grid = grids.load(path, args.plugin)
        runs = grids.expand(grid, smoke=args.smoke, sets=sets, seeds=seeds,
                            extra=GPU_LAYER if on_gpu else None, cache_dir=results / ".cache")
        evals.check_runs(grid.evaluate, runs, results / ".cache")     # post-hoc evaluations
        if args.executor == "slurm":
            slots = slurm_slots(args.gpus_per_task, args.cpus_per_task, runs)
        else:
            slots = make_slots(gpus, args.workers, runs)
    except GridError:
        raise
    except ConfigError as e:
        raise GridError(path, str(e)) from None
    plugins = list(dict.fromkeys((grid.plugins or []) + args.plugin))
    if args.dry_run:
        return dry_run(grid.name, runs, results)

    gdir = store.grid_dir(results, grid.name)
    manifest = {
        "name": grid.name, "claim": grid.claim, "grid_file": str(path), "spec": grid.spec,
        "applied": {"smoke": args.smoke, "set": sets, "seeds": seeds, "plugins": plugins},
        "runs": [r.manifest_entry() for r in runs]}
    # unsorted keys: the report lists axes and bundles in the order the grid gives them
    store.atomic_write_text(gdir / store.MANIFEST, json.dumps(manifest, indent=2,
                                                              default=str) + "\n")
    pending = prepare(runs, results, grid.name, args.retry_failed)
    print(f"{grid.name}: {len(runs)} runs, {len(runs) - len(pending)} already finished, "
          f"{len(pending)} to run ({slots.describe(args.executor)}) -> {gdir}",
          file=sys.stderr, flush=True)
    if args.executor == "slurm":
        if not slurm.submit(pending, grid.name, gdir, slots, plugins, args):
            return 0
    else:
        run_pool(pending, grid.name, slots, plugins)
    # post-hoc evaluations that finished runs lack (evals.py); never retrains
    failed_evals = evals.run_missing(grid.evaluate, runs, results, grid.name, slots.envs, plugins)
    return summarize(grid.name, runs, results) or int(failed_evals > 0)


def prepare(runs, results: Path, name: str, retry_failed: bool) -> list:
    """Write each unfinished run's config.json; return the (run, run_dir) still to do."""
    pending = []
    for run in runs:
        rd = store.run_dir(results, name, run.run_id)
        if store.is_done(rd):
            if not (retry_failed and status_of(rd)[0] == "failed"):
                continue
            (rd / store.RESULT).unlink()    # the old reason stays in its stderr.log
        cfg = rd / store.CONFIG
        # Same run id, so only execution settings (devices, threads) can differ: rewrite.
        if not cfg.exists() or store.read_json(cfg) != json.loads(json.dumps(run.config)):
            store.atomic_write_json(cfg, run.config)
        pending.append((run, rd))
    return pending


def summarize(name: str, runs, results: Path) -> int:
    """One line of counts; one line per run that did not finish ok. 1 if any failed."""
    counts: dict[str, int] = {}
    bad = []
    for run in runs:
        status, reason = status_of(store.run_dir(results, name, run.run_id))
        counts[status] = counts.get(status, 0) + 1
        if status not in ("ok", "pending"):
            bad.append(f"  {status:<9} {run.run_id}  {run.label} seed={run.seed}: "
                       f"{one_line(reason)}")
    parts = ", ".join(f"{counts[s]} {s}" for s in ("ok", "diverged", "failed", "pending")
                      if counts.get(s))
    print(f"{name}: {len(runs)} runs: {parts}", file=sys.stderr)
    if bad:
        print("runs that did not finish ok:\n" + "\n".join(bad), file=sys.stderr)
    if counts.get("pending"):
        print(f"{counts['pending']} runs are unfinished (running in another process, or "
              f"submitted): run the same command again to collect them", file=sys.stderr)
    return 1 if bad else 0


def dry_run(name: str, runs, results: Path) -> int:
    """Print every run with its parameter count; train nothing, write nothing."""
    counts: dict[str, int] = {}
    rows = []
    for run in runs:
        key = json.dumps(run.config["model"], sort_keys=True)
        if key not in counts:
            try:
                counts[key] = count_params(run.config["model"])
            except ConfigError as e:
                raise ConfigError(f"run {run.run_id} ({run.label})", str(e)) from None
        status = status_of(store.run_dir(results, name, run.run_id))[0]
        rows.append((run.run_id, str(run.seed), run.label, f"{counts[key]:,}", status))
    head = ("run_id", "seed", "variant", "params", "status")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for row in [head] + rows:
        print("  ".join(c.rjust(w) if i in (1, 3) else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    todo = sum(r[4] == "pending" for r in rows)
    print(f"{name}: {len(runs)} runs ({todo} to train), {len(counts)} distinct models "
          f"-> {store.grid_dir(results, name)} (dry run: nothing written)")
    return 0


def count_params(model_cfg: dict) -> int:
    """Build the model on the meta device (no memory, no init cost) and count."""
    import torch

    from transformer import ModelConfig, build_model
    cfg = ModelConfig(**model_cfg)
    try:
        with torch.device("meta"):
            model = build_model(cfg)
    except (RuntimeError, NotImplementedError):   # a module that computes at init
        model = build_model(cfg)
    return sum(p.numel() for p in model.parameters())


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
