"""Training throughput against the peers, model FLOP/s against the measured matmul peak,
and (on a GPU) bf16 + torch.compile with MFU."""
from __future__ import annotations

import torch

from ablations.measure.timing import matmul_peak

from .common import Row, Settings, alternate, median, speedup, spread
from .models import PEERS, GPTShape, PeerMissing, n_params, ours, train_step

SHAPE = GPTShape()                                  # the configuration the README quotes
QUICK_SHAPE = GPTShape(vocab=512, d_model=64, n_layers=2, n_heads=4, seq=64, batch=4)

# Known dense bf16 tensor-core peaks (FLOP/s) for the MFU denominator on GPUs.
GPU_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def flops_per_token(model: torch.nn.Module, s: GPTShape) -> float:
    """Training FLOPs per token, the PaLM/Chinchilla count used for MFU: 6 per weight of
    every matmul (embedding lookups excluded, head included) plus 12 * layers * seq *
    d_model for attention's two score matmuls (full, not halved for the causal mask)."""
    lookups = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head = getattr(model, "head", None)
    tied = head is not None and id(head.weight) in lookups
    matmul = sum(p.numel() for p in model.parameters() if id(p) not in lookups)
    if tied:
        matmul += head.weight.numel()
    return 6 * matmul + 12 * s.n_layers * s.seq * s.d_model


def bench_train(st: Settings) -> list[Row]:
    """Tokens/s of one training step (forward, backward, AdamW) for each contender.

    Ours trains as `ablate train` does: the projection fused into the loss, fused AdamW.
    Peers train as their documentation shows: logits, F.cross_entropy and a default
    torch.optim.AdamW; each peer runs again with the fused AdamW ("+ fused AdamW"), so
    the table separates what the optimizer buys from what the model code buys.
    """
    s = st.pick(SHAPE, QUICK_SHAPE)
    torch.manual_seed(0)
    batch = torch.randint(0, s.vocab, (s.batch, s.seq + 1))
    model = ours(s)
    flops = flops_per_token(model, s)
    contenders = {"ours": train_step(model, batch, fused_loss=True)}
    sizes, skipped = {"ours": n_params(model)}, []
    for name, build in PEERS.items():
        try:
            peers = build(s), build(s)
        except PeerMissing as e:
            skipped.append(Row("train", name, float("nan"), "tokens/s", note=f"skipped: {e}"))
            continue
        contenders[name] = train_step(peers[0], batch, fused_loss=False, fused_adamw=False)
        contenders[f"{name} + fused AdamW"] = train_step(peers[1], batch, fused_loss=False)
        sizes[name] = sizes[f"{name} + fused AdamW"] = n_params(peers[0])
    times = alternate(contenders, rounds=st.rounds, repeat=st.pick(2, 1), warmup=2)
    tps = {name: s.tokens / median(t) for name, t in times.items()}
    as_documented = [n for n in tps if n in PEERS]
    best = max(as_documented, key=tps.get) if as_documented else None
    config = (f"vocab {s.vocab}, d_model {s.d_model}, {s.n_layers} layers, {s.n_heads} heads, "
              f"seq {s.seq}, batch {s.batch}, fp32")
    rows = []
    for name, value in tps.items():
        row = Row("train", name, value, "tokens/s", baseline="ours", ratio=value / tps["ours"],
                  note=f"{sizes[name] / 1e6:.2f}M params; {spread(times[name])}",
                  extra={"config": config, "flops_per_token": flops})
        if name == "ours":
            row.baseline, row.ratio = None, None
        if name == "ours" and best:
            row.baseline, row.target = best, 1.10
            row.ratio = speedup(times["ours"], times[best])
            row.note += f"; ratio of medians {value / tps[best]:.3f}"
        rows.append(row)
    return rows + skipped


def bench_flops(st: Settings, train_rows: list[Row] | None = None) -> list[Row]:
    """Model FLOP/s of each contender's training step against the fp32 matmul peak."""
    peak = matmul_peak(n=st.pick(2048, 512), rounds=st.pick(5, 2))
    rows = [Row("flops", "matmul peak (fp32)", peak / 1e9, "GFLOP/s",
                note=f"best of {st.pick(2048, 512)}^3 sgemm rounds")]
    for r in train_rows or []:
        if r.unit == "tokens/s" and r.value == r.value:          # skip nan (missing peers)
            achieved = r.value * r.extra["flops_per_token"]
            rows.append(Row("flops", r.name, achieved / 1e9, "GFLOP/s",
                            baseline="matmul peak (fp32)", ratio=achieved / peak,
                            note="model FLOPs (6N + 12LTd per token) / s"))
    return rows


# GPT-2 small (124M) as llm.c and nanoGPT train it: the shape the GPU bench measures.
GPT2_SMALL = GPTShape(vocab=50304, d_model=768, n_layers=12, n_heads=12, seq=1024, batch=16)


def bench_gpu(st: Settings) -> list[Row]:
    """GPT-2 small on a GPU: tokens/s and MFU (against the datasheet bf16 peak and the
    measured one) of ours in bf16 eager and bf16 + compile, the peers at the same shape,
    and KV-cache decoding. Goals: MFU >= 40% (llm.c reaches about that on an H100) and
    compile >= 1.15x eager."""
    if not torch.cuda.is_available():
        return [Row("gpu", "bf16 + compile", float("nan"), "tokens/s",
                    note="skipped: no CUDA device")]
    return gpu_rows(st, "cuda", st.pick(GPT2_SMALL, QUICK_SHAPE), compile_ok=True)


def gpu_rows(st: Settings, device: str, s: GPTShape, compile_ok: bool) -> list[Row]:
    """The GPU bench on any device (the tests run it on the CPU, uncompiled)."""
    torch.manual_seed(0)
    batch = torch.randint(0, s.vocab, (s.batch, s.seq + 1), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    builders = {"ours": ours, **PEERS}
    contenders, flops, skipped = {}, {}, []
    for name, build in builders.items():
        for compiled in (False, True) if compile_ok else (False,):
            label = f"{name}, bf16" + (" + compile" if compiled else " eager")
            if name != "ours" and not compiled and compile_ok:
                continue                                  # peers: their best setting only
            try:
                model = build(s).to(device)
            except PeerMissing as e:
                skipped.append(Row("gpu", label, float("nan"), "tokens/s", note=f"skipped: {e}"))
                break
            flops[label] = flops_per_token(model, s)
            net = torch.compile(model) if compiled else model
            contenders[label] = _gpu_step(net, batch, device)
    times = alternate(contenders, rounds=st.rounds, repeat=st.pick(5, 1), warmup=3, sync=sync)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    spec = next((v for k, v in GPU_PEAKS.items() if k in name), None)
    measured = matmul_peak(device, torch.bfloat16, n=st.pick(8192, 256))
    config = (f"vocab {s.vocab}, d_model {s.d_model}, {s.n_layers} layers, {s.n_heads} "
              f"heads, seq {s.seq}, batch {s.batch}, bf16 autocast, SDPA")
    rows = []
    for label, t in times.items():
        tps = s.tokens / median(t)
        achieved = tps * flops[label]
        mfu = achieved / (spec or measured)
        row = Row("gpu", label, tps, "tokens/s", ratio=mfu, baseline="MFU",
                  note=f"{name}; MFU {mfu:.1%} of the {'datasheet' if spec else 'measured'} "
                       f"bf16 peak {(spec or measured) / 1e12:.0f} TFLOP/s; "
                       f"{achieved / measured:.1%} of the measured "
                       f"{measured / 1e12:.0f} TFLOP/s",
                  extra={"config": config, "flops_per_token": flops[label],
                         "mfu_measured_peak": achieved / measured})
        if label == "ours, bf16 + compile" and spec:
            row.target = 0.40
        rows.append(row)
    eager, compiled = times.get("ours, bf16 eager"), times.get("ours, bf16 + compile")
    if eager and compiled:
        rows.append(Row("gpu", "compile vs eager (ours)", speedup(eager, compiled), "x",
                        target=1.15, note="bf16; ratio of medians per training step"))
    rows += _gpu_decode(st, s, device)
    return rows + skipped


def _gpu_decode(st: Settings, s: GPTShape, device: str) -> list[Row]:
    """Greedy decoding of 256 new tokens in bf16, KV cache against recomputation."""
    torch.manual_seed(0)
    model = ours(GPTShape(s.vocab, s.d_model, s.n_layers, s.n_heads, seq=s.seq, batch=1))
    model = model.to(device).eval()
    n = min(st.pick(256, 16), s.seq - 16)
    prompt = torch.randint(0, s.vocab, (1, 16), device=device)
    out = {}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(use_cache):
        with torch.autocast(device, dtype=torch.bfloat16):
            out[use_cache] = model.generate(prompt, n, temperature=0.0, use_cache=use_cache)
    times = alternate({"cache": lambda: run(True), "recompute": lambda: run(False)},
                      rounds=st.pick(3, 1), warmup=1, sync=sync)
    same = torch.equal(out[True], out[False])
    return [Row("gpu", f"decode {n} tokens, KV cache", n / median(times["cache"]), "tokens/s",
                baseline=f"decode {n} tokens, recompute",
                ratio=speedup(times["cache"], times["recompute"]),
                note=f"bf16, batch 1; greedy tokens {'identical' if same else 'differ (bf16)'}"),
            Row("gpu", f"decode {n} tokens, recompute", n / median(times["recompute"]),
                "tokens/s", note="bf16, batch 1")]


def _gpu_step(net, batch, device: str):
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=device == "cuda")
    inputs, target = batch[:, :-1], batch[:, 1:]

    def step():
        with torch.autocast(device, dtype=torch.bfloat16):
            logits = net(inputs)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), target.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step
