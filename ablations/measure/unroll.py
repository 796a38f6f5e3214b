"""A recurrent layer written out as its cell in a Python loop over time, with the very
same weights: the computation torch's fused kernel performs, made visible step by step
to autograd (its critical path) and to the FLOP counter (which cannot see inside it)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

CELLS = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}


def unrolled(rnn: nn.RNNBase) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (B, T, D) -> the top layer's outputs (B, T, H), like rnn(x)[0] for a
    batch_first, unidirectional, projection-free nn.LSTM / nn.GRU / nn.RNN."""
    kind = type(rnn)
    if (kind not in CELLS or rnn.bidirectional or getattr(rnn, "proj_size", 0)
            or not rnn.batch_first):
        raise ValueError(f"cannot unroll {rnn}: expected a batch_first, unidirectional "
                         f"LSTM, GRU or RNN without projection")
    cells = []
    for layer in range(rnn.num_layers):
        extra = {"nonlinearity": rnn.nonlinearity} if kind is nn.RNN else {}
        cell = CELLS[kind](rnn.input_size if layer == 0 else rnn.hidden_size,
                           rnn.hidden_size, bias=rnn.bias, device="meta", **extra)
        for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ()):
            setattr(cell, name, getattr(rnn, f"{name}_l{layer}"))     # shared, not copied
        cells.append(cell)
    lstm = kind is nn.LSTM

    def forward(x: torch.Tensor) -> torch.Tensor:
        for cell in cells:
            h = x.new_zeros(x.shape[0], cell.hidden_size)
            state = (h, h) if lstm else h
            outs = []
            for x_t in x.unbind(1):
                state = cell(x_t, state)
                outs.append(state[0] if lstm else state)
            x = torch.stack(outs, 1)
        return x
    return forward
