"""Recurrent baselines: our LSTM/GRU language models against the few lines of plain
PyTorch anyone would write for the same shape, and the parallelism claim: one LSTM
layer against one self-attention layer, step time against sequence length."""
from __future__ import annotations

import torch
from torch import nn

from transformer import ModelConfig, build_model
from transformer.attention import Attention
from transformer.model import Stack

from .common import Row, Settings, alternate, median, speedup
from .models import GPTShape, train_step

RNN_SHAPE = GPTShape(vocab=4096, d_model=256, n_layers=2, seq=256, batch=16)
QUICK_RNN_SHAPE = GPTShape(vocab=512, d_model=64, n_layers=2, seq=64, batch=4)


class PlainRNNLM(nn.Module):
    """Embedding -> torch.nn.LSTM/GRU -> Linear: the reference, nothing else."""

    def __init__(self, cell, s: GPTShape):
        super().__init__()
        self.embed = nn.Embedding(s.vocab, s.d_model)
        self.rnn = cell(s.d_model, s.d_model, num_layers=s.n_layers, batch_first=True)
        self.head = nn.Linear(s.d_model, s.vocab, bias=False)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0])


def bench_recurrent(st: Settings) -> list[Row]:
    s = st.pick(RNN_SHAPE, QUICK_RNN_SHAPE)
    torch.manual_seed(0)
    batch = torch.randint(0, s.vocab, (s.batch, s.seq + 1))
    contenders = {}
    for arch, cell in (("lstm", nn.LSTM), ("gru", nn.GRU)):
        ours = build_model(ModelConfig(arch=arch, vocab_size=s.vocab, d_model=s.d_model,
                                       n_layers=s.n_layers))
        contenders[f"ours {arch}"] = train_step(ours, batch, fused_loss=True)
        contenders[f"torch {arch}"] = train_step(PlainRNNLM(cell, s), batch, fused_loss=False)
    times = alternate(contenders, rounds=st.rounds, repeat=st.pick(2, 1), warmup=2)
    tps = {name: s.tokens / median(t) for name, t in times.items()}
    shape = (f"vocab {s.vocab}, hidden {s.d_model}, {s.n_layers} layers, seq {s.seq}, "
             f"batch {s.batch}")
    rows = []
    for arch in ("lstm", "gru"):
        rows.append(Row("recurrent", f"torch {arch}", tps[f"torch {arch}"], "tokens/s",
                        note=shape))
        rows.append(Row("recurrent", f"ours {arch}", tps[f"ours {arch}"], "tokens/s",
                        baseline=f"torch {arch}",
                        ratio=speedup(times[f"ours {arch}"], times[f"torch {arch}"]),
                        target=0.9, note="both with fused AdamW"))
    return rows


def bench_scaling(st: Settings) -> list[Row]:
    """Forward + backward time of one LSTM layer and one causal multi-head self-attention
    layer (projections included; d_model 256, 4 heads, batch 8) at sequence lengths
    16..1024. The paper's Table 1: a recurrent layer needs O(n) sequential steps of
    O(d^2) work, self-attention O(1) sequential steps of O(n^2 d) work."""
    d, batch = st.pick(256, 64), 8
    lengths = st.pick([16, 32, 64, 128, 256, 512, 1024], [16, 64])
    torch.manual_seed(0)
    cfg = ModelConfig(arch="decoder", d_model=d, n_heads=4, n_layers=1, pos="none",
                      max_len=max(lengths))
    attn, stack = Attention(cfg), Stack(cfg, causal=True)
    lstm = nn.LSTM(d, d, batch_first=True)
    rows = []
    for T in lengths:
        x = torch.randn(batch, T, d, requires_grad=True)

        def attention(x=x):
            attn(x, stack.pos, 0, None, True).sum().backward()

        def recurrent(x=x):
            lstm(x)[0].sum().backward()
        times = alternate({"attention": attention, "lstm": recurrent},
                          rounds=st.pick(5, 2), repeat=st.pick(3, 1), warmup=1)
        att, rec = median(times["attention"]) * 1e3, median(times["lstm"]) * 1e3
        extra = {"seq": T, "batch": batch, "d_model": d}
        rows.append(Row("scaling", f"attention layer, T={T}", att, "ms/step", extra=extra))
        rows.append(Row("scaling", f"lstm layer, T={T}", rec, "ms/step",
                        baseline=f"attention layer, T={T}", ratio=rec / att,
                        note="ratio > 1: the LSTM layer is slower", extra=extra))
    return rows
