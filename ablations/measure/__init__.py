"""Measuring instead of training: timing, FLOP counting and the autograd graph's
critical path. Pure PyTorch helpers, shared by measurement tasks
(`ablations/tasks/measure.py`) and `ablate bench` (benchmarks/)."""
from .flops import forward_flops  # noqa: F401
from .graph import critical_path  # noqa: F401
from .timing import alternate, matmul_peak, median, time_call  # noqa: F401
