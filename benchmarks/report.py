"""Writing the results: a markdown table (printed and saved), CSV, JSON and one figure."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .common import Row

COLUMNS = ["bench", "name", "value", "unit", "baseline", "ratio", "target", "passed", "note"]


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"
    return str(value)


def markdown(rows: list[Row], machine: dict) -> str:
    busy = machine.get("busy_cores_at_start")
    lines = [f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, "
             f"torch {machine['torch']} with {machine['torch_threads']} threads"
             f"{', GPU ' + machine['gpu'] if machine.get('gpu') else ''}); other processes "
             f"kept {busy if busy is not None else '?'} cores busy just before it started "
             f"(1-minute load average {machine['load_avg_1m_at_start']} at start, "
             f"{machine.get('load_avg_1m_at_end', '?')} at end, this run included). "
             f"Medians of alternating rounds.",
             ""]
    if busy is not None and busy >= 0.25 * (machine.get("cores") or 1):
        lines += [f"**Warning: other processes were using {busy} of {machine['cores']} cores. "
                  f"Multi-threaded timings on shared cores inflate unevenly (a thread that "
                  f"loses its core stalls every parallel op); rerun on a quiet machine.**", ""]
    lines += ["| bench | contender | value | unit | vs | ratio | target | met | note |",
             "|---|---|---:|---|---|---:|---:|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        target = f">= {r.target:g}x" if r.target is not None else ""
        met = {True: "yes", False: "**NO**", None: ""}[r.passed]
        lines.append(f"| {r.bench} | {r.name} | {fmt(r.value)} | {r.unit} | {r.baseline or ''} "
                     f"| {ratio} | {target} | {met} | {r.note} |")
    return "\n".join(lines) + "\n"


def write(rows: list[Row], machine: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.md", out / "bench.csv", out / "bench.json"]
    paths[0].write_text(markdown(rows, machine))
    with open(paths[1], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            d = r.to_dict()
            w.writerow([d[c] for c in COLUMNS])
    paths[2].write_text(json.dumps({"machine": machine, "rows": [r.to_dict() for r in rows]},
                                   indent=1, default=str))
    png = plot(rows, out / "bench.png")
    return paths + ([png] if png else [])


def plot(rows: list[Row], path: Path) -> Path | None:
    """One panel per benchmark that ran: bars for comparisons, lines for sweeps."""
    from ablations.report.mpl import plt

    panels = [p for p in (_train, _kvcache, _recurrent, _scaling, _loop, _flops)
              if p(rows, None)]
    if not panels:
        return None
    cols = min(3, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(5.2 * cols, 3.8 * n_rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        panel(rows, ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pick(rows, bench):
    return [r for r in rows if r.bench == bench and r.value == r.value]      # drop nan


def _bars(ax, rows, title, unit):
    names = [r.name for r in rows]
    ax.barh(names, [r.value for r in rows],
            color=["tab:blue" if "ours" in n or "ablate" in n else "tab:gray" for n in names])
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(unit)
    for i, r in enumerate(rows):
        if r.ratio is not None:
            ax.text(r.value, i, f" {r.ratio:.2f}x", va="center", fontsize=8)


def _bar_panel(bench, title, unit):
    """A panel of horizontal bars for one comparison benchmark."""
    def panel(rows, ax):
        sel = _pick(rows, bench)
        if ax is not None and sel:
            _bars(ax, sel, title, unit)
        return bool(sel)
    return panel


_train = _bar_panel("train", "training throughput (fp32)", "tokens/s")
_recurrent = _bar_panel("recurrent", "recurrent baselines", "tokens/s")
_loop = _bar_panel("loop", "training loop at grid size", "steps/s")


def _flops(rows, ax):
    sel = [r for r in _pick(rows, "flops") if r.ratio is not None]
    if ax is not None and sel:
        ax.barh([r.name for r in sel], [100 * r.ratio for r in sel], color="tab:green")
        ax.invert_yaxis()
        ax.set_title("model FLOP/s / measured matmul peak")
        ax.set_xlabel("% of peak")
    return bool(sel)


def _series(ax, rows, prefix, key):
    pts = sorted((r.extra[key], r.value) for r in rows if r.name.startswith(prefix))
    if pts:
        ax.plot(*zip(*pts), marker="o", label=prefix)


def _kvcache(rows, ax):
    sel = _pick(rows, "kvcache")
    if ax is not None and sel:
        _series(ax, sel, "KV cache", "new_tokens")
        _series(ax, sel, "recompute", "new_tokens")
        ax.set_title("greedy decoding, batch 1")
        ax.set_xlabel("new tokens")
        ax.set_ylabel("tokens/s")
        ax.set_yscale("log")
        ax.legend()
    return bool(sel)


def _scaling(rows, ax):
    sel = _pick(rows, "scaling")
    if ax is not None and sel:
        _series(ax, sel, "attention layer", "seq")
        _series(ax, sel, "lstm layer", "seq")
        ax.set_title("one layer, forward + backward")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("ms / step")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.legend()
    return bool(sel)
