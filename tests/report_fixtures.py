"""Synthetic result folders in the exact on-disk format of the grid runner, for the
report tests: manifest.json + runs/<id>/result.json + metrics.csv, no training."""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Callable


def run_id(axes: dict, seed: int) -> str:
    return hashlib.sha1(json.dumps([axes, seed], sort_keys=True, default=str)
                        .encode()).hexdigest()[:12]


def make_grid(root: Path, spec: dict, metrics: Callable[[dict, int], dict],
              config: Callable[[dict, int], dict] | None = None,
              status: Callable[[dict, int], str] | None = None,
              unfinished: int = 0, curve_steps=(0, 50, 100), bundles: dict | None = None,
              cells: list[dict] | None = None) -> Path:
    """Write grid `spec['name']` under root: one run per (axes cell, seed).

    `spec['tune']` keys are swept like axes, and each entry gets its `variant` (the label
    without them), as the grid runner writes a tuned grid.
    `metrics(cell, seed)` gives the result.json metrics of a run (cell maps axis key ->
    value, plus 'bundle' when bundles are used); `config(cell, seed)` the stored config.
    `cells` replaces the cartesian product of the axes (a value None: the run's arch
    ignores that axis, as the grid runner records it).
    Every run also gets a metrics.csv with train_loss / val_loss curves over
    `curve_steps` (the last step is written twice, as a resumed run would)."""
    gdir = Path(root) / spec["name"]
    axes = {**(spec.get("axes") or {}), **(spec.get("tune") or {})}
    combos = [dict(zip(axes, vals)) for vals in itertools.product(*axes.values())]
    if cells is not None:
        combos = cells
    if bundles:
        combos = [{**c, "bundle": b} for c in combos for b in bundles]
    entries = []
    for cell, seed in itertools.product(combos, spec.get("seeds", [0, 1, 2])):
        rid = run_id(cell, seed)
        axis_vals = {k: v for k, v in cell.items() if k != "bundle"}
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in axis_vals.items()
                          if v is not None)
        if cell.get("bundle"):
            label = f"{label}, {cell['bundle']}" if label else cell["bundle"]
        entries.append({"run_id": rid, "seed": seed, "axes": axis_vals,
                        "bundle": cell.get("bundle"), "label": label})
        if spec.get("tune"):                     # the label without the tuned keys
            entries[-1]["variant"] = ", ".join(
                f"{k.split('.')[-1]}={v}" for k, v in axis_vals.items()
                if v is not None and k not in spec["tune"]) or "base"
        if len(entries) <= unfinished:           # listed in the manifest, never finished
            continue
        m = metrics(cell, seed)
        st = status(cell, seed) if status else "ok"
        rdir = gdir / "runs" / rid
        rdir.mkdir(parents=True)
        cfg = config(cell, seed) if config else {"model": {}, "train": {"seed": seed},
                                                  "task": {"name": "order", "seq_len": 16}}
        result = {"run_id": rid, "status": st, "reason": None if st == "ok" else st,
                  "metrics": m, "config": cfg, "params": 1000, "steps": curve_steps[-1],
                  "tokens_per_s": 5000.0 + seed, "wall_s": 3.0, "peak_mem_mb": 100.0,
                  "git_sha": "0" * 40, "versions": {}, "device": "cpu"}
        (rdir / "result.json").write_text(json.dumps(result))
        lines = ["step,metric,value"]
        final = m.get("val_loss", 1.0)
        for i, step in enumerate(curve_steps):
            frac = (len(curve_steps) - 1 - i) / max(1, len(curve_steps) - 1)
            lines += [f"{step},train_loss,{final + 2.0 * frac + 0.01 * seed}",
                      f"{step},val_loss,{final + 1.5 * frac}"]
        lines.append(f"{curve_steps[-1]},val_loss,{final}")      # a resumed duplicate
        (rdir / "metrics.csv").write_text("\n".join(lines) + "\n")
    gdir.mkdir(parents=True, exist_ok=True)
    manifest = {"name": spec["name"], "claim": spec.get("claim", ""), "spec": spec,
                "runs": entries}
    (gdir / "manifest.json").write_text(json.dumps(manifest))
    return gdir


def as_ladder(gdir: Path, sizes: dict[str, int]) -> Path:
    """Rewrite a grid made with cells carrying `_size` as the grid runner writes a
    ladder's runs: each entry gets `size` and `size_params` (sizes: name -> N) and a
    label that names its size."""
    manifest = json.loads((gdir / "manifest.json").read_text())
    for e in manifest["runs"]:
        size = e["axes"].pop("_size")
        rest = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in e["axes"].items())
        e.update(size=size, size_params=sizes[size], label=f"size={size}, {rest}")
    (gdir / "manifest.json").write_text(json.dumps(manifest))
    return gdir
