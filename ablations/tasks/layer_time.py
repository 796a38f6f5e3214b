"""`layer_time`: forward + backward time of one layer at one sequence length, the
FLOPs it does, and its critical path (the longest chain of dependent operations), with
a projection of its time on a device with many parallel lanes (Vaswani et al. 2017,
Table 1: a recurrent layer needs O(n) sequential operations, self-attention O(1)).

The layer is the model's body without embedding and head: for decoder / encoder the
transformer stack (with n_layers: 1, one pre-LN block: attention and FFN, each a
residual branch), for lstm / gru / rnn torch's recurrent module. Its time is measured
on the fused kernels; its FLOPs and its critical path on a reference computation: the
layer itself for attention, the recurrence unrolled as its cell in a loop over time
(same weights) for a recurrent layer, where torch's kernel hides the steps.

Training settings it reads: batch_size (rows), steps (timed steps; the median counts),
seed (weights and inputs), precision (autocast), accelerator, threads.
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch

from transformer import build_model
from transformer.validation import ConfigError
from transformer.model import TransformerLM
from transformer.recurrent import RecurrentLM

from ..measure import critical_path, forward_flops, matmul_peak, median, time_call
from ..measure.unroll import unrolled
from .base import TASKS, TaskParams
from .measurement import Measured, Measurement


@dataclasses.dataclass
class LayerTimeParams(TaskParams):
    seq_len: int = 256
    warmup: int = 1                   # untimed steps before the train.steps timed ones
    peak_size: int = 1024             # n of the n x n x n matmul whose best FLOP/s is the peak
    # the parallel device of the projection: a data-centre GPU (H100-class) runs about
    # 400 TFLOP/s of dense bf16 matmul in practice (989 on paper), and each dependent
    # kernel costs about 5 us of launch and synchronisation however small it is
    device_tflops: float = 400.0
    device_latency_us: float = 5.0

    def validate(self):
        for name, low in (("seq_len", 1), ("warmup", 0), ("peak_size", 16)):
            self.require(getattr(self, name) >= low, name,
                         f"must be >= {low}, got {getattr(self, name)}")
        self.require(self.device_tflops > 0, "device_tflops",
                     f"must be > 0, got {self.device_tflops}")
        self.require(self.device_latency_us >= 0, "device_latency_us",
                     f"must be >= 0, got {self.device_latency_us}")


@TASKS.register("layer_time")
class LayerTime(Measurement):
    """Time, FLOP/s and critical path of one layer's training step (see module doc)."""
    Params = LayerTimeParams
    default_arch = "lstm"
    requires = {"seq2seq": False}
    model_defaults = {"d_model": 256, "n_heads": 4, "n_layers": 1, "pos": "none",
                      "max_len": 1024}
    train_defaults = {"batch_size": 16, "steps": 5}     # steps: timed steps (median)
    writes = ("step_ms", "step_gflop", "achieved_gflops", "peak_gflops", "mfu",
              "critical_path", "projected_ms", "projected_compute_ms", "projected_latency_ms")

    @classmethod
    def max_positions(cls, params, arch):
        return params.seq_len

    def measure(self, model, train, device) -> Measured:
        p = self.params
        torch.manual_seed(train.seed)
        net = build_model(model).to(device)
        layer, fn, reference = body(net)
        B, T, D = train.batch_size, p.seq_len, model.d_model
        x = torch.randn(B, T, D, device=device, requires_grad=True)
        grad = torch.randn(B, T, D, device=device)
        params = list(layer.parameters())
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(train.precision)
        cast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else \
            contextlib.nullcontext
        sync = {"cuda": torch.cuda.synchronize,
                "mps": getattr(torch, "mps", None) and torch.mps.synchronize}.get(
                    device.type) or (lambda: None)

        def step():                       # forward + backward, as in training
            for q in params:
                q.grad = None
            x.grad = None
            with cast():
                out = fn(x)
            out.backward(grad.to(out.dtype))

        peak = matmul_peak(str(device), dtype or torch.float32, n=p.peak_size, rounds=3)
        times = time_call(step, train.steps, p.warmup, sync)
        step_s = median(times)
        with cast():
            flops = 3 * forward_flops(lambda: reference(x.detach()))  # backward: 2x forward
            path = critical_path(reference(x))
        compute_s = flops / (p.device_tflops * 1e12)
        # backward walks the same chain back: twice the forward's dependent steps
        latency_s = 2 * path * p.device_latency_us * 1e-6
        metrics = {
            "step_ms": step_s * 1e3,
            "step_gflop": flops / 1e9,
            "achieved_gflops": flops / step_s / 1e9,
            "peak_gflops": peak / 1e9,
            "mfu": flops / step_s / peak,
            "critical_path": float(path),
            "projected_ms": max(compute_s, latency_s) * 1e3,
            "projected_compute_ms": compute_s * 1e3,
            "projected_latency_ms": latency_s * 1e3,
        }
        return Measured(metrics, params=sum(q.numel() for q in params), steps=len(times),
                        tokens=B * T * len(times), seconds=sum(times))


def body(net):
    """(module, fn, reference) of a model's body: fn(x) (B, T, D) -> (B, T, D) runs it as
    trained; reference(x) computes the same with every step visible to autograd."""
    if isinstance(net, TransformerLM):
        return net.stack, net.stack, net.stack
    if isinstance(net, RecurrentLM):
        return net.rnn, (lambda x: net.rnn(x)[0]), unrolled(net.rnn)
    raise ConfigError("model.arch", f"layer_time measures a transformer stack or a "
                      f"recurrence, not {type(net).__name__}")
