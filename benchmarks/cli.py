"""`ablate bench`: throughput, FLOP/s, KV cache, recurrent, scaling, loop and start-up
benchmarks in one process, printed as a table with ratios and written (markdown, CSV,
JSON, PNG) under --out."""
from __future__ import annotations

import sys
import time
from pathlib import Path

BENCHES = ("train", "flops", "kvcache", "recurrent", "scaling", "loop", "startup", "worker",
           "gpu")


def add_arguments(p):
    p.add_argument("--only", default=",".join(BENCHES), metavar="LIST",
                   help=f"comma-separated subset of {','.join(BENCHES)} (default: all; "
                        f"flops needs train and runs it)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and few rounds: checks every code path in well under a "
                        "minute; the numbers mean nothing")
    p.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    p.add_argument("--rounds", type=int, default=None,
                   help="alternating rounds per comparison (default 7, --quick 2)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: torch's choice, one per core)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a target ratio is missed (timings are noisy: for "
                        "release checks on a quiet machine, not CI)")


def main(args) -> int:
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in only if b not in BENCHES]
    if unknown:
        print(f"ablate bench: error: unknown benchmark {unknown[0]!r}; valid: "
              f"{', '.join(BENCHES)}", file=sys.stderr)
        return 2
    if args.rounds is not None and args.rounds < 1:
        print("ablate bench: error: --rounds must be >= 1", file=sys.stderr)
        return 2

    import torch

    from . import kvcache, loop, report, rnn_speed, startup, throughput
    from .common import Settings, load_average, machine

    if args.threads:
        torch.set_num_threads(args.threads)
    st = Settings(quick=args.quick, rounds=args.rounds or (2 if args.quick else 7),
                  threads=args.threads, out=args.out)
    info = machine()
    runners = {
        "train": throughput.bench_train, "kvcache": kvcache.bench_kvcache,
        "recurrent": rnn_speed.bench_recurrent, "scaling": rnn_speed.bench_scaling,
        "loop": loop.bench_loop, "startup": startup.bench_startup,
        "worker": startup.bench_worker, "gpu": throughput.bench_gpu,
    }
    if "flops" in only and "train" not in only:
        only.insert(only.index("flops"), "train")
    rows, started = [], time.perf_counter()
    for name in [b for b in BENCHES if b in only]:
        t = time.perf_counter()
        print(f"ablate bench: {name} ...", file=sys.stderr, flush=True)
        if name == "flops":
            new = throughput.bench_flops(st, [r for r in rows if r.bench == "train"])
        else:
            new = runners[name](st)
        rows += new
        print(f"ablate bench: {name} done in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    info["bench_seconds"] = round(time.perf_counter() - started, 1)
    info["load_avg_1m_at_end"] = load_average()
    info["quick"] = args.quick
    table = report.markdown(rows, info)
    print(table)
    paths = report.write(rows, info, Path(args.out))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    missed = [r for r in rows if r.passed is False]
    if missed:
        print(f"targets missed: {', '.join(f'{r.bench}/{r.name}' for r in missed)}")
    return 1 if (args.check and missed) else 0
