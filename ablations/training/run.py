"""One run: `ablate train --set ...` and the idempotent per-run entry point that the
grid runner and SLURM array tasks call (`ablate _run_one RUN_DIR`).

A run directory holds config.json (resolved), metrics.csv (append-only curves),
checkpoints/last.ckpt (written atomically) and, written atomically last, result.json.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import traceback
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..config import add_set_option, nest, parse_sets, resolve, run_id
from .. import plugins
from ..store import EXIT_BUSY, EXIT_OK
from ..tasks import TASKS
from .device import uses_cpu
from .measuring import measure_in_dir


def add_arguments(p):
    p.add_argument("--results", default="results", help="results folder (default: results)")
    plugins.add_plugin_option(p)
    p.add_argument("--name", default="train",
                   help="folder under --results that holds the run (default: train)")
    add_set_option(p, "task.name=mqar model.pos=rope train.steps=500")


def main(args) -> int:
    plugins.import_modules(args.plugin)
    resolved = resolve([nest(parse_sets(args.sets))], cache_dir=store.cache_dir(args.results))
    rid = run_id(resolved)
    rdir = store.run_dir(args.results, args.name, rid)
    if is_worker_rank():                     # a DDP child re-executing this command line
        return train_in_dir(rdir, resolved)
    if store.is_done(rdir):
        result = store.read_result(rdir)
        print(f"{rid}: already done ({result['status']}) -> {rdir}")
        return store.exit_code(result["status"])
    store.write_config(rdir, resolved)
    code = run_one(rdir)
    if code != EXIT_BUSY:
        result = store.read_result(rdir)
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in result["metrics"].items()
                            if isinstance(v, float) and not k.startswith(("attn", "grad")))
        print(f"{rid}: {result['status']} in {result['wall_s']:.1f}s "
              f"({result['tokens_per_s']:.0f} tok/s) {metrics} -> {rdir}")
    return code


def add_one_arguments(p):
    p.add_argument("run_dir", help="a run directory holding config.json")


def main_one(args) -> int:
    # the grid runner hands its --plugin modules down, so that variants they register
    # exist in this process too
    plugins.import_from_env()
    return run_one(Path(args.run_dir))


def is_worker_rank() -> bool:
    return int(os.environ.get("LOCAL_RANK", 0)) != 0 or int(os.environ.get("NODE_RANK", 0)) != 0


def run_one(run_dir: Path) -> int:
    """Train (or resume) the run in run_dir unless it is done; idempotent. Exit code:
    0 ok, 1 diverged/failed (recorded in result.json), 3 another process holds it."""
    run_dir = Path(run_dir)
    with store.run_lock(run_dir) as mine:
        if not mine:
            print(f"{run_dir.name}: running elsewhere (locked)", file=sys.stderr)
            return EXIT_BUSY
        if store.is_done(run_dir):
            return store.exit_code(store.status_of(run_dir)[0])
        resolved = store.read_config(run_dir)
        return train_in_dir(run_dir, resolved)


def train_in_dir(run_dir: Path, resolved: dict) -> int:
    started = time.time()
    try:
        # a measurement task (ablations/tasks/measurement.py) measures instead of training
        fit = measure_in_dir if TASKS.get(resolved["task"]["name"]).measures else _fit
        summary = fit(run_dir, resolved)
    except ConfigError:
        raise
    except Exception as e:                   # a crashed run is recorded; the grid goes on
        if is_worker_rank():
            raise
        (run_dir / store.ERROR_LOG).write_text(traceback.format_exc())
        summary = {"status": "failed", "reason": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
    if is_worker_rank():
        return EXIT_OK
    result = write_outcome(run_dir, resolved, summary, time.time() - started)
    return store.exit_code(result["status"])


def _fit(run_dir: Path, resolved: dict) -> dict:
    with imports_outside_gc():
        import lightning as L
        import torch

        from .loggers import make_logger
        from .module import AblationModule
        from .checkpoint import resume_point
        from .progress import RunProgress
        from ..tasks import task_of

    quiet_lightning()
    cfg = resolved["train"]
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    ckpt = store.checkpoint_path(run_dir)
    resume_step, resume_rows = resume_point(ckpt)
    task = task_of(resolved, store.cache_dir(store.results_of(run_dir)))
    module = AblationModule(resolved, task, run_dir, resume_step, resume_rows)
    trainer = build_trainer(cfg, run_dir, make_logger(resolved, run_dir), [RunProgress()])
    (run_dir / store.SUMMARY).unlink(missing_ok=True)
    trainer.fit(module, ckpt_path=str(ckpt) if resume_step is not None else None)
    return store.read_json(run_dir / store.SUMMARY)


@contextlib.contextmanager
def imports_outside_gc():
    """Importing Lightning (with torchmetrics, scipy, sympy, torch._dynamo) creates
    millions of objects; the cyclic collector rescans them over and over while they are
    created and once more at interpreter exit, about two seconds of every run's start-up
    and shutdown. They live as long as the process: import with the collector paused,
    then freeze them out of its reach (gc.freeze), and collect as usual afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def build_trainer(cfg: dict, run_dir: Path, logger=False, callbacks=()):
    """The Trainer every run uses (`cfg` is the resolved train section). The module
    does its own evaluation, logging and checkpointing on intervals, so Lightning's
    progress bar, validation loop and checkpoint callback are off (our own progress
    line is a callback), and its logger is only the optional view of `train.logger`."""
    import lightning as L
    on_cpu = uses_cpu(cfg["accelerator"])
    return L.Trainer(
        max_steps=cfg["steps"], max_epochs=-1, accelerator=cfg["accelerator"],
        devices=cfg["devices"], strategy=cfg["strategy"], precision=cfg["precision"],
        gradient_clip_val=cfg["grad_clip"] or None,
        # strict determinism on a GPU forbids some attention kernels: warn instead
        deterministic=cfg["deterministic"] if on_cpu
        else ("warn" if cfg["deterministic"] else False),
        logger=logger, callbacks=list(callbacks), enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        limit_val_batches=0, default_root_dir=str(run_dir))


def quiet_lightning() -> None:
    """Our own summary line says what matters; Lightning's banners and tips do not."""
    import logging
    import warnings
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    # batches are a function of (seed, step): resuming mid-"epoch" is exact here
    warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def write_outcome(run_dir, resolved, summary, wall_s) -> dict:
    """result.json from the training process's summary (or the failure it raised)."""
    status = summary.get("status") or ("diverged" if summary.get("diverged_step") is not None
                                       else "ok")
    reason = summary.get("reason")
    if status == "diverged" and not reason:
        reason = f"non-finite training loss at step {summary['diverged_step']}"
    metrics = dict(summary.get("metrics", {}))
    metrics["diverged_step"] = summary.get("diverged_step")
    train_s = summary.get("train_s") or 0.0
    return store.write_result(
        run_dir, status=status, reason=reason, config=resolved, metrics=metrics,
        params=summary.get("params"), steps=summary.get("steps", 0),
        tokens=summary.get("tokens", 0),
        tokens_per_s=summary.get("tokens", 0) / train_s if train_s else 0.0,
        train_s=train_s, wall_s=wall_s, peak_mem_mb=summary.get("peak_mem_mb"),
        device=summary.get("device", "n/a"), corpus=corpus_of(resolved),
        **{store.integrity.KEY: store.integrity.record(run_dir)})


def corpus_of(resolved: dict) -> dict | None:
    """The text a text task trained on: its source and the sha1 of its bytes, so that a
    result says which text it came from (hub sources: only their name is known)."""
    source = resolved["task"].get("source")
    if source is None:
        return None
    from ..tasks.corpus import fingerprint
    return {"source": source, "sha1": fingerprint(source)}
