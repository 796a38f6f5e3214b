"""Per-run start-up: what a grid pays for every run before its first training step, and
what the persistent slot worker (ablations/grid/worker.py) saves a whole grid.

A fresh run is a new process (`python -m ablations _run_one RUN_DIR`, which
`ablate train` also goes through). A child process runs the real command line with
a global optimizer hook that stamps the wall clock at the first optimizer step, so
the run splits into interpreter start, the command line's imports (torch), set-up
(Lightning's import, config, data, tokenizer, model, Trainer, the step-0 evaluation,
the first forward/backward), training (with its evaluations and checkpoints) and
shutdown.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Row, Settings, median

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = time.time()
import torch
from ablations.cli import main          # the command line's own imports (torch, config)
t_imports = time.time()
marks = {}
def first_step(optimizer, args, kwargs):  # a global hook: the real run stays untouched
    marks.setdefault("first_step", time.time())
from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(first_step)
code = main(sys.argv[1:])
print("BENCH " + json.dumps({"t0": t0, "imports": t_imports, "end": time.time(), "code": code,
                              **marks}))
"""

TINY = {"task.name": "recall", "model.d_model": 64, "model.n_layers": 2, "task.seq_len": 64,
        "train.batch_size": 32}


def run_child(results: Path, steps: int, extra: dict) -> dict:
    sets = [a for k, v in {**TINY, **extra, "train.steps": steps}.items()
            for a in ("--set", f"{k}={v}")]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    launch = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, "train", "--results", str(results), *sets],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    done = time.time()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"start-up child failed ({out.returncode}): {out.stderr[-2000:]}")
    m = json.loads(line[6:])
    return {"interpreter": m["t0"] - launch, "imports": m["imports"] - m["t0"],
            "setup": m["first_step"] - m["imports"], "run": m["end"] - m["first_step"],
            "exit": done - m["end"], "total": done - launch,
            "to_first_step": m["first_step"] - launch}


def bench_startup(st: Settings) -> list[Row]:
    steps = st.pick(600, 20)                  # the recall task's default length
    # --quick checks the code path: one thread keeps it fast on a shared machine
    cases = {"recall (generated)": {"train.threads": 1} if st.quick else {}}
    if not st.quick:
        cases["lm (python-docs, char tokenizer)"] = {"task.name": "lm", "task.seq_len": 64}
    rows = []
    for label, extra in cases.items():
        samples = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(st.pick(2, 1)):         # each sample a new run in the same results
                samples.append(run_child(Path(tmp), steps, {**extra, "train.seed": i}))
        parts = {k: median([s[k] for s in samples]) for k in samples[0]}
        first, total = parts["to_first_step"], parts["total"]
        detail = ", ".join(f"{k} {parts[k]:.2f}s" for k in
                           ("interpreter", "imports", "setup", "run", "exit"))
        extra_info = {"steps": steps, **{k: round(v, 3) for k, v in parts.items()}}
        rows.append(Row("startup", f"time to first step, {label}", first, "s",
                        baseline=f"whole run, {label}", ratio=first / total,
                        note=detail, extra=extra_info))
        rows.append(Row("startup", f"whole run, {label}", total, "s",
                        note=f"{steps} steps, d_model 64, 2 layers, seq 64, batch 32",
                        extra=extra_info))
    return rows


GRID = """
name: startup_grid
claim: start-up cost
task: {name: recall, seq_len: 64}
base:
  model: {d_model: 64, n_layers: 2}
  train: {steps: STEPS, batch_size: 32, eval_every: STEPS, ckpt_every: STEPS, threads: 1}
axes:
  model.pos: POS
seeds: SEEDS
"""


def bench_worker(st: Settings) -> list[Row]:
    """A grid of 6 short runs (2 with --quick: the code path, not a measurement) on one
    slot: fresh processes against the persistent worker (the same runs, the same numbers;
    only the per-run start-up differs)."""
    steps = st.pick(100, 10)
    seeds = st.pick([0, 1], [0])
    pos = st.pick(["rope", "sinusoidal", "none"], ["rope", "none"])
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ABLATE_RUN_ONE_CMD", None)
    times: dict[str, list[float]] = {"fresh": [], "worker": []}
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.yaml"
        grid.write_text(GRID.replace("STEPS", str(steps)).replace("SEEDS", str(seeds))
                        .replace("POS", str(pos)))
        for i in range(st.pick(2, 1)):
            for mode, flag in (("fresh", ["--fresh-processes"]), ("worker", [])):
                t = time.perf_counter()
                out = subprocess.run([sys.executable, "-m", "ablations", "run", str(grid),
                                      "--results", str(Path(tmp) / f"{mode}{i}"),
                                      "--workers", "1", *flag], capture_output=True,
                                     text=True, env=env, cwd=ROOT, timeout=900)
                if out.returncode != 0:
                    raise RuntimeError(f"grid failed ({out.returncode}): {out.stderr[-2000:]}")
                times[mode].append(time.perf_counter() - t)
    fresh, worker = median(times["fresh"]), median(times["worker"])
    note = f"{len(pos) * len(seeds)} runs of {steps} steps, one slot, `ablate run` end to end"
    return [Row("worker", "grid, persistent worker", worker, "s",
                baseline="grid, fresh process per run", ratio=fresh / worker, note=note),
            Row("worker", "grid, fresh process per run", fresh, "s", note=note)]
