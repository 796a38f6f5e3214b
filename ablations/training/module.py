"""The Lightning wrapper: any `build_model` network trained on any task.

Batches are generated on the device from (seed, step), so there is no DataLoader
work per step and a resumed run sees exactly the batches an uninterrupted one would.
Evaluation and diagnostics (evaluation.py) run on an interval, outside Lightning's
validation loop, which keeps the per-step overhead of tiny ablation models close to
a bare loop. The optimizer and schedule are in optim.py.
"""
from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from transformer import ModelConfig, build_model

from .. import store
from ..config import TrainConfig
from ..store import MetricsWriter
from .checkpoint import save_checkpoint_atomically
from .device import device_usage
from .scoring import attention_diagnostics, grad_norms, score
from .optim import make_optimizer, make_schedule


class StepIndices(torch.utils.data.Dataset):
    """A 'dataset' of step numbers: the module builds the real batch on the device."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


class AblationModule(L.LightningModule):
    def __init__(self, resolved: dict, task, run_dir=None, resume_step=None, resume_rows=None):
        super().__init__()
        self.resolved = resolved
        self.cfg = TrainConfig(**resolved["train"])
        self.model_cfg = ModelConfig(**resolved["model"])
        self.net = build_model(self.model_cfg)
        self.task = task
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume_step = resume_step
        self.resume_rows = resume_rows       # metrics.csv rows when the checkpoint was taken
        self.writer = None                   # MetricsWriter, opened on global rank 0
        self.diverged_step: int | None = None
        self.last_eval: dict[str, float] = {}
        self.tokens_seen = 0
        self.train_time = 0.0
        self._val_sets = None
        self._t0 = None
        self._resumed_time = 0.0

    # Lightning records the running hook's name on the module around every hook call,
    # some fifty assignments a step, and nn.Module.__setattr__ checks each one against
    # parameters, buffers and submodules. Plain values already set skip that check.
    def __setattr__(self, name, value):
        if isinstance(value, (type(None), bool, int, float, str)) and name in self.__dict__:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # -- setup -------------------------------------------------------------------------
    def setup(self, stage):
        if self.trainer.is_global_zero and self.run_dir is not None and self.writer is None:
            self.writer = MetricsWriter(self.run_dir / store.METRICS, self.resume_step,
                                        self.resume_rows)

    def configure_model(self):
        if self.cfg.compile and not hasattr(self.net, "_orig_mod"):
            self.net = torch.compile(self.net)     # the inner net, never the LightningModule

    @property
    def inner(self):
        return getattr(self.net, "_orig_mod", self.net)

    def train_dataloader(self):
        return DataLoader(StepIndices(self.cfg.steps), batch_size=None, shuffle=False)

    def configure_optimizers(self):
        opt = make_optimizer(self.net, self.cfg)
        sched = make_schedule(opt, self.cfg)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- training ----------------------------------------------------------------------
    def training_loss(self, inputs, target):
        """Mean cross-entropy over the scored positions. The eager network fuses its
        output projection into the loss and never builds the logits (transformer/
        loss.py); a compiled one returns logits, whose loss the compiler fuses."""
        if self.net is self.inner:
            return self.net.loss(*inputs, target=target)
        return F.cross_entropy(self.net(*inputs).flatten(0, 1).float(), target.flatten(),
                               ignore_index=-100)

    def training_step(self, _index, _batch_idx):
        step = self.global_step
        if self._t0 is None:
            self._t0 = time.perf_counter()
        batch = self.task.train_batch(step, self.cfg.batch_size, self.device, self.global_rank)
        inputs = self.inner.inputs(batch)
        loss = self.training_loss(inputs, batch["target"])
        self.tokens_seen += sum(t.numel() for t in inputs)
        if not torch.isfinite(loss):
            # stop at once; returning None skips this optimizer step
            self.diverged_step = step
            self.trainer.should_stop = True
            self._write(step, {"train_loss": float(loss.detach())})
            return None
        if step % self.cfg.log_every == 0:
            self._write(step, {"train_loss": loss.item(),
                               "lr": self.trainer.optimizers[0].param_groups[0]["lr"]})
        return loss

    def on_before_optimizer_step(self, optimizer):
        step = self.global_step
        if step % self.cfg.log_every and step % self.cfg.diag_every:
            return
        self._write(step, grad_norms(self.inner, per_layer=step % self.cfg.diag_every == 0))

    def on_train_batch_end(self, outputs, _index, _batch_idx):
        step = self.global_step                       # optimizer steps taken so far
        if self.diverged_step is not None:
            return
        last = step == self.cfg.steps
        if step % self.cfg.eval_every == 0 or last:
            self._timed_eval(step, diagnostics=step % self.cfg.diag_every == 0 or last,
                             test=last and self.cfg.test_batches > 0)
        if self.run_dir is not None and step % self.cfg.ckpt_every == 0 and not last:
            save_checkpoint_atomically(self.trainer, store.checkpoint_path(self.run_dir))

    def on_train_start(self):
        if self.global_step == 0:                      # the untrained model, for reference
            self._timed_eval(0)

    def _timed_eval(self, step, diagnostics=True, test=False):
        t = time.perf_counter()
        with self.trainer.precision_plugin.forward_context():
            self.last_eval = score(self.net, self.task, self.val_sets())
            if test:       # scored once, on the final weights: never used to choose anything
                self.last_eval.update(score(self.net, self.task, self.task.val_sets(
                    self.cfg.test_batches, self.cfg.batch_size, self.device, "test"), "test"))
        if diagnostics:
            self.last_eval.update(attention_diagnostics(self.inner, self.val_sets()[""][0]))
        self._write(step, self.last_eval)
        if self._t0 is not None:
            self._t0 += time.perf_counter() - t       # evaluation is not training time

    def on_train_end(self):
        self.train_time = self._elapsed()

    def on_fit_end(self):
        """Rank 0 hands the run's outcome back through a file: under ddp_spawn the
        parent process never sees this module's state."""
        if not self.trainer.is_global_zero or self.run_dir is None:
            return
        if self.writer is not None:
            self.writer.close()
        store.write_model(self.run_dir, self.resolved, self.inner.state_dict())
        peak, device = device_usage(self.device)
        store.atomic_write_json(self.run_dir / store.SUMMARY, {
            "metrics": self.last_eval, "diverged_step": self.diverged_step,
            "steps": self.global_step, "tokens": self.tokens_seen * self.trainer.world_size,
            "train_s": self.train_time, "params": self.inner.num_params(),
            "peak_mem_mb": peak, "device": f"{device} x{self.trainer.world_size}"})

    def _elapsed(self) -> float:
        """Training seconds so far, across resumes, evaluation excluded."""
        now = (time.perf_counter() - self._t0) if self._t0 is not None else 0.0
        return self._resumed_time + now

    # -- evaluation --------------------------------------------------------------------
    def val_sets(self):
        if self._val_sets is None:
            self._val_sets = self.task.val_sets(self.cfg.eval_batches, self.cfg.batch_size,
                                                self.device)
        return self._val_sets

    def _write(self, step, values):
        if self.logger is not None and values and self.trainer.is_global_zero:
            self.logger.log_metrics({k: v for k, v in values.items()
                                     if isinstance(v, (int, float))}, step)
        if self.writer is not None and values:
            self.writer.write(step, values)

    # -- exact resume: RNG state and counters travel with the checkpoint ---------------
    def on_save_checkpoint(self, checkpoint):
        checkpoint["ablate"] = {"torch_rng": torch.get_rng_state(),
                                "tokens_seen": self.tokens_seen,
                                "last_eval": self.last_eval,
                                "train_time": self._elapsed(),
                                "metrics_rows": self.writer.rows if self.writer else None}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("ablate", {})
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        self.tokens_seen = state.get("tokens_seen", 0)
        self.last_eval = state.get("last_eval", {})
        self._resumed_time = state.get("train_time", 0.0)
