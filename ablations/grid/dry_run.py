"""`ablate run --dry-run`: every run with its parameter count and a time estimate, and
each ladder size's budget; trains nothing and writes nothing."""
from __future__ import annotations

from pathlib import Path

from .. import store
from .budget import run_params
from .pool import cpu_count


def dry_run(name: str, runs, results: Path, matched: list[str] = (),
            scale: str | None = None, workers: int = 1, estimator=None) -> int:
    """Print every run with its parameter count (and the widths `match` solved) and a
    time estimate that says how it was made (estimate.py, or the `estimator` given);
    train nothing, write nothing."""
    from .estimate import Estimator, device_of, fmt_seconds
    counts: dict[str, int] = {}
    cache = store.cache_dir(results)
    estimator = estimator or Estimator(store.grid_dir(results, name), cache if cache.exists()
                                       else None, max(1, cpu_count() // max(1, workers)))
    rows, total, todo_s, seconds = [], 0.0, 0.0, {}
    for run in runs:
        params = run_params(run, counts)
        status = store.status_of(store.run_dir(results, name, run.run_id))[0]
        widths = [str(run.config["model"].get(f.split(".", 1)[1], "")) for f in matched]
        device = device_of(run.config, scale)
        secs, how = estimator.seconds(run, params, device, status)
        seconds[run.run_id] = secs
        total += secs
        todo_s += secs if status == "pending" else 0.0
        rows.append((run.run_id, str(run.seed), run.label, *widths, f"{params:,}",
                     f"{fmt_seconds(secs)} {device} {how}", status))
    head = ("run_id", "seed", "variant", *[f.split(".", 1)[1] for f in matched], "params",
            "est. time", "status")
    right = {1, len(head) - 3, len(head) - 2} | {3 + i for i in range(len(matched))}
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for row in [head] + rows:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    todo = sum(r[-1] == "pending" for r in rows)
    print(f"{name}: {len(runs)} runs ({todo} to train), {len(counts)} distinct models "
          f"-> {store.grid_dir(results, name)} (dry run: nothing written)")
    print(f"{name}: estimated {fmt_seconds(total)} of run time in all, "
          f"{fmt_seconds(todo_s / max(1, workers))} left with {workers} worker(s) "
          f"(from {estimator.describe()}; see ablations/grid/estimate.py)")
    print_ladder(runs, seconds, workers)
    return 0


def print_ladder(runs, seconds: dict, workers: int) -> None:
    """Each ladder size: its non-embedding parameters N, the steps and tokens the budget
    rule gave its runs, and their estimated time (ladder.py has the rule)."""
    from .estimate import fmt_seconds
    from .ladder import size_table
    rows = size_table(runs, seconds)
    if not rows:
        return
    head = ("experiment", "size", "N (non-emb.)", "steps", "tokens", "tokens/N", "runs",
            "est. time")
    rows = [(*r[:-1], fmt_seconds(r[-1])) for r in rows]
    if not any(r[0] for r in rows):                 # no experiments: no column for them
        head, rows = head[1:], [r[1:] for r in rows]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("\nladder: steps = max(min_steps, ceil(tokens_per_param x N / tokens per step)), "
          "N the mean non-embedding parameters of the size's cells")
    for row in [head] + rows:
        print("  ".join(c.rjust(w) if i >= len(head) - 6 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    by_exp: dict[str, float] = {}
    for r in size_table(runs, seconds):
        by_exp[r[0]] = by_exp.get(r[0], 0.0) + r[-1]
    for exp, secs in by_exp.items():
        print(f"ladder{' ' + exp if exp else ''}: estimated {fmt_seconds(secs)} of run time, "
              f"{fmt_seconds(secs / max(1, workers))} with {workers} worker(s)")
