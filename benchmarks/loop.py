"""What the training loop costs around a tiny model: the real AblationModule + Trainer,
built exactly as `ablate train` builds them, against a bare PyTorch loop with the same
model, task, batch, loss, optimizer, schedule and gradient clipping, its batches
already in memory. Ablation grids live at this size, where per-step overhead (hooks,
logging, metric syncs, data generation, diagnostics) is what decides a grid's cost.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ablations.config import TrainConfig, nest, resolve
from ablations.training.module import AblationModule
from ablations.training.optim import make_optimizer, make_schedule
from ablations.tasks import build_task
from ablations.training.run import build_trainer, quiet_lightning
from transformer import ModelConfig, build_model

from .common import Row, Settings, median, speedup

# The shipped grids' typical size (d_model 64-128, 2-4 layers, seq 32-128, batch 32).
# The smallest is where per-step overhead weighs most.
CASES = {
    "d64 L2 T32": {"model.d_model": 64, "model.n_layers": 2, "task.seq_len": 32},
    "d128 L2 T64": {"model.d_model": 128, "model.n_layers": 2, "task.seq_len": 64},
}


def resolved_case(overrides: dict, steps: int) -> dict:
    sets = {"task.name": "recall", "model.arch": "decoder", "train.batch_size": 32,
            "train.steps": steps, **overrides}
    return resolve([nest(sets)])


def run_module(resolved: dict, run_dir: Path) -> tuple[float, float]:
    """(training seconds as the run reports them, wall seconds of trainer.fit)."""
    cfg = resolved["train"]
    torch.manual_seed(cfg["seed"])
    task = build_task(resolved["task"], cfg["seed"], resolved["model"]["arch"])
    module = AblationModule(resolved, task, run_dir)
    trainer = build_trainer(cfg, run_dir)
    t = time.perf_counter()
    trainer.fit(module)
    return module.train_time, time.perf_counter() - t


def run_bare(resolved: dict) -> float:
    """Seconds for the same steps in a plain loop; batches generated beforehand."""
    cfg = TrainConfig(**resolved["train"])
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(cfg.deterministic)      # as the Trainer sets it
    task = build_task(resolved["task"], cfg.seed, resolved["model"]["arch"])
    net = build_model(ModelConfig(**resolved["model"]))
    opt = make_optimizer(net, cfg)
    sched = make_schedule(opt, cfg)
    batches = [task.train_batch(i, cfg.batch_size, "cpu") for i in range(min(cfg.steps, 50))]
    t = time.perf_counter()
    for step in range(cfg.steps):
        batch = batches[step % len(batches)]
        loss = net.loss(batch["input"], target=batch["target"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
    return time.perf_counter() - t


def bench_loop(st: Settings) -> list[Row]:
    quiet_lightning()
    steps = st.pick(200, 30)
    rows = []
    cases = st.pick(CASES, dict(list(CASES.items())[:1]))
    for label, overrides in cases.items():
        resolved = resolved_case(overrides, steps)
        bare, module, fit = [], [], []
        for _ in range(st.pick(3, 1)):                 # alternate: bare, module, bare, ...
            bare.append(run_bare(resolved))
            with tempfile.TemporaryDirectory() as tmp:
                train_s, fit_s = run_module(resolved, Path(tmp) / "run")
            module.append(train_s)
            fit.append(fit_s)
        bare_sps, module_sps = steps / median(bare), steps / median(module)
        cfg = resolved["train"]
        extra = {"steps": steps, "batch": cfg["batch_size"], "log_every": cfg["log_every"],
                 "diag_every": cfg["diag_every"], "eval_every": cfg["eval_every"],
                 "ckpt_every": cfg["ckpt_every"], "task": "recall"}
        rows.append(Row("loop", f"bare loop, {label}", bare_sps, "steps/s", extra=extra))
        rows.append(Row("loop", f"ablate train, {label}", module_sps, "steps/s",
                        baseline=f"bare loop, {label}", ratio=speedup(module, bare), target=0.9,
                        note=f"training time as the run reports it (evaluation excluded); "
                             f"whole fit incl. setup + evals: {median(fit):.1f}s",
                        extra=extra))
    return rows
