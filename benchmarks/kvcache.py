"""Incremental decoding with the KV cache against full recomputation: generated tokens/s
against the number of new tokens, and whether the greedy tokens are identical."""
from __future__ import annotations

import torch

from .common import Row, Settings, alternate, median, speedup
from .models import GPTShape, ours
from .throughput import QUICK_SHAPE, SHAPE

PROMPT = 16


def bench_kvcache(st: Settings) -> list[Row]:
    s = st.pick(SHAPE, QUICK_SHAPE)
    lengths = st.pick([16, 64, 128, 240], [8, 24])
    lengths = [n for n in lengths if PROMPT + n <= s.seq]       # the learned table's size
    torch.manual_seed(0)
    model = ours(GPTShape(s.vocab, s.d_model, s.n_layers, s.n_heads, seq=s.seq, batch=1)).eval()
    prompt = torch.randint(0, s.vocab, (1, PROMPT))
    rows = []
    for n in lengths:
        out = {}

        def run(use_cache, n=n, out=out):
            out[use_cache] = model.generate(prompt, n, temperature=0.0, use_cache=use_cache)
        times = alternate({"cache": lambda: run(True), "recompute": lambda: run(False)},
                          rounds=st.pick(3 if n > 100 else 5, 2), warmup=1)
        same = torch.equal(out[True], out[False])
        cached, full = n / median(times["cache"]), n / median(times["recompute"])
        common = {"new_tokens": n, "prompt": PROMPT, "identical_tokens": same}
        rows.append(Row("kvcache", f"recompute, {n} new", full, "tokens/s", extra=common))
        rows.append(Row("kvcache", f"KV cache, {n} new", cached, "tokens/s",
                        baseline=f"recompute, {n} new",
                        ratio=speedup(times["cache"], times["recompute"]),
                        target=5.0 if n == 240 else None,
                        note=f"greedy tokens {'identical' if same else 'DIFFER'}", extra=common))
    return rows
