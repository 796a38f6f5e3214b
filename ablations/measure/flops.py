"""Model FLOPs of a forward pass, counted by torch's FlopCounterMode (matmuls, convs,
attention), never typed in."""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils import flop_counter


def _sdpa_cpu(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


# torch counts the CUDA attention kernels but not the CPU flash kernel: count it alike
# (every query with every key: the causal mask is not subtracted, as in the usual
# "6N + 12 L T d" model-FLOPs count)
EXTRA = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    EXTRA[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu


def forward_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of fn, run without autograd (so attention takes the fused
    kernel on every device). A training step (forward + backward) is about 3x this:
    each matmul's backward costs two matmuls of the same size."""
    with torch.no_grad(), flop_counter.FlopCounterMode(display=False,
                                                        custom_mapping=EXTRA) as mode:
        fn()
    return int(mode.get_total_flops())
