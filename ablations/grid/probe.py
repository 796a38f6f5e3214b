"""The timed probe behind `ablate run --dry-run`'s estimate: a few real training steps
and one evaluation of a run's actual shape, and one real one-step run for the per-run
start-up (Trainer, task and evaluation sets, writing the run's files), on this machine
and with the thread count each slot will get.

It times the very code a run executes (task batches, the network's fused loss, the
fused AdamW step, `score`), in this process and in a temporary folder: the results
folder is never touched.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

MIN_STEPS, MAX_STEPS, BUDGET_S = 2, 50, 0.5


def step_and_eval_seconds(resolved: dict, cache_dir, threads: int) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluation) of this run's shape on CPU."""
    import torch

    from transformer import ModelConfig, build_model

    from ..config import TrainConfig
    from ..tasks import task_of
    from ..training.scoring import score
    from ..training.optim import make_optimizer

    torch.set_num_threads(threads)
    cfg = TrainConfig(**resolved["train"])
    task = task_of(resolved, cache_dir)
    net = build_model(ModelConfig(**resolved["model"]))
    opt = make_optimizer(net, cfg)

    def step(i: int) -> None:
        batch = task.train_batch(i, cfg.batch_size, "cpu")
        net.loss(*net.inputs(batch), target=batch["target"]).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(0)                        # first-call allocations are start-up, not steady state
    n, t0 = 0, time.perf_counter()
    while n < MIN_STEPS or (n < MAX_STEPS and time.perf_counter() - t0 < BUDGET_S):
        step(n + 1)
        n += 1
    step_s = (time.perf_counter() - t0) / n
    val_sets = task.val_sets(cfg.eval_batches, cfg.batch_size, "cpu")
    t0 = time.perf_counter()
    score(net, task, val_sets)
    return step_s, time.perf_counter() - t0


def startup_seconds(resolved: dict, step_s: float, eval_s: float) -> float:
    """A real run of one step (its evaluations at steps 0 and 1 included) less that
    step and those evaluations: what every run pays besides its steps, measured once."""
    from ..training.run import imports_outside_gc, train_in_dir
    with imports_outside_gc():     # a slot's worker imported these before forking the run
        import lightning  # noqa: F401

        from ..training import module  # noqa: F401
    one = {**resolved, "train": {**resolved["train"], "steps": 1, "logger": "none",
                                 "accelerator": "cpu", "devices": 1, "strategy": "auto"}}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "probe" / "runs" / "probe"
        run_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):      # its progress line and warnings
            train_in_dir(run_dir, one)
        wall = time.perf_counter() - t0
    return max(0.0, wall - step_s - 2 * eval_s)
