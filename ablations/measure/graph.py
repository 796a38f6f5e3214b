"""The critical path of a computation: the longest chain of dependent operations in its
autograd graph. A device with enough parallel lanes can run everything else at once,
so this chain, times the latency of one dependent operation, bounds its time from below.

Views (reshape, transpose, slicing, chunking) only relabel memory and launch no kernel:
they count 0. Leaves (AccumulateGrad) count 0. Every other node counts 1.
"""
from __future__ import annotations

import re

import torch

# autograd node names (less their trailing version digits) of ops that only make views
VIEWS = frozenset({
    "AccumulateGrad", "AliasBackward", "AsStridedBackward", "DiagonalBackward",
    "ExpandBackward", "NarrowBackward", "PermuteBackward", "ReshapeAliasBackward",
    "SelectBackward", "SliceBackward", "SplitBackward", "SplitWithSizesBackward",
    "SqueezeBackward", "TBackward", "TransposeBackward", "UnbindBackward",
    "UnfoldBackward", "UnsafeSplitBackward", "UnsafeSplitWithSizesBackward",
    "UnsafeViewBackward", "UnsqueezeBackward", "ViewBackward",
})
_VERSION = re.compile(r"\d+$")


def op_cost(node) -> int:
    """1 for a node that computes, 0 for a view or a leaf."""
    return 0 if _VERSION.sub("", type(node).__name__) in VIEWS else 1


def critical_path(output) -> int:
    """Length of the longest chain of dependent operations that produced `output` (a
    tensor, or an autograd node): the longest path in the autograd graph, each node
    weighted by `op_cost`. Memoised, iterative (a 1,000-step recurrence is ~10,000
    nodes deep, past Python's recursion limit). 0 for a tensor without a graph."""
    root = output.grad_fn if isinstance(output, torch.Tensor) else output
    if root is None:
        return 0
    depth: dict = {}
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in depth:
            continue
        children = [c for c, _ in node.next_functions if c is not None]
        if expanded:
            depth[node] = op_cost(node) + max((depth[c] for c in children), default=0)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if c not in depth)
    return depth[root]
