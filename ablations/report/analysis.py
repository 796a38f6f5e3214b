"""Loading stored results and the statistics the report rests on (never trains).

A grid folder holds manifest.json (written by the grid runner) and runs/<id>/result.json
+ metrics.csv. `load_grid` turns it into one DataFrame row per finished run, with a
column per axis key (``model.pos``, ``bundle``, ...), every metric, the run's cost and a
``diverged`` 0/1 column. Keys that plots or checks mention but that are not axes (e.g.
``model.d_model`` set through a bundle) are read from each run's stored config.

Conventions
- A run without result.json is unfinished: skipped and counted.
- An axis value of None means the run's architecture ignores that field (an LSTM has no
  ``model.pos``); the runner lists such a run once for all cells of that axis. A selector
  naming a value on that axis does not match it (so it never dilutes "rope vs none");
  a selector value of null matches exactly those runs.
- Failed runs appear in summary.csv but not in any statistic; diverged runs count in
  every statistic whose value is finite (non-finite values are dropped; `n` counts
  the finite ones).
- Statistics over seeds: mean, sample std (ddof=1), and a two-sided 95% confidence
  interval mean ± t(0.975, n-1)·std/√n. Differences between two groups pair by seed when
  both sides have exactly the same seeds (t on the per-seed differences), Welch's t
  otherwise (see stats.py; scipy is not needed).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .stats import Diff, Stats, describe, difference, finite, t_cdf, t_ppf  # noqa: F401
from .. import evals
from ..store import MANIFEST, METRICS, RESULT, read_json

COST = ["params", "steps", "tokens_per_s", "train_s", "wall_s", "peak_mem_mb"]


# ----------------------------------------------------------------------- loading
@dataclasses.dataclass
class Grid:
    name: str
    path: Path
    spec: dict
    claim: str
    runs: pd.DataFrame            # one row per finished run (summary.csv)
    configs: dict[str, dict]      # run_id -> resolved config
    axes: list[str]               # axis keys in spec order ('bundle' last when present)
    metrics: list[str]            # metric columns, in first-seen order
    variants: list[str]           # variant labels in manifest order
    n_listed: int
    n_unfinished: int

    @property
    def published(self) -> str:
        return str(self.spec.get("published") or "").strip()

    def axis_order(self, key: str) -> list:
        """Values of a key in the order the spec lists them (then first appearance)."""
        listed = list((self.spec.get("axes") or {}).get(key, []))
        if key == "bundle":
            listed = list((self.spec.get("bundles") or {}).keys())
        seen = [v for v in self.runs.get(key, pd.Series(dtype=object)).tolist()
                if _present(v)]
        out = [v for v in listed if any(match_value(s, v) for s in seen)]
        for v in seen:
            if not any(match_value(v, o) for o in out):
                out.append(v)
        return out


def find_grids(results: Path) -> list[Path]:
    results = Path(results)
    return sorted(p for p in results.iterdir() if (p / MANIFEST).is_file()) \
        if results.is_dir() else []


def get_path(d: dict, dotted: str, default=None):
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def referenced_keys(spec: dict) -> list[str]:
    """Config keys the spec's plots, checks and baseline mention."""
    keys: list[str] = list((spec.get("baseline") or {}).keys())
    for plot in spec.get("plots") or []:
        keys += [plot[k] for k in ("x", "y", "hue") if isinstance(plot.get(k), str)]
        keys += list((plot.get("where") or {}).keys())
    for check in spec.get("checks") or []:
        for k in ("compare", "against", "select", "best", "where"):
            keys += list((check.get(k) or {}).keys())
    return list(dict.fromkeys(keys))


def load_grid(path: Path) -> Grid:
    path = Path(path)
    manifest = read_json(path / MANIFEST)
    spec = manifest.get("spec") or {}
    axes = list((spec.get("axes") or {}).keys())
    for entry in manifest.get("runs", []):
        axes += [k for k in (entry.get("axes") or {}) if k not in axes]
    if spec.get("bundles") or any(e.get("bundle") for e in manifest.get("runs", [])):
        axes.append("bundle")
    rows, configs, metrics, texts, unfinished = [], {}, [], [], 0
    for entry in manifest.get("runs", []):
        rfile = path / "runs" / entry["run_id"] / RESULT
        if not rfile.is_file():
            unfinished += 1
            continue
        res = read_json(rfile)
        label = entry.get("label") or _label(entry)
        row = {"run_id": entry["run_id"], "label": label, "bundle": entry.get("bundle"),
               "seed": entry.get("seed", get_path(res, "config.train.seed")),
               "status": res.get("status", "ok"), "reason": res.get("reason")}
        row.update((entry.get("axes") or {}))
        # + post-hoc evaluations as <metric>@<NAME> columns (evals.py)
        for k, v in {**(res.get("metrics") or {}), **evals.metrics(rfile.parent)}.items():
            row[k] = math.nan if v is None else v
            names = texts if isinstance(v, str) else metrics  # e.g. val_error@256: why
            if k not in names:
                names.append(k)
        row.update({k: res.get(k, math.nan) for k in COST})
        row["diverged"] = int(row["status"] == "diverged")
        configs[entry["run_id"]] = res.get("config") or {}
        rows.append(row)
    base = ["run_id", "label", "bundle", "seed", "status", "reason"]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(
        base + [a for a in axes if a != "bundle"] + metrics + COST + ["diverged"] + texts)))
    for key in referenced_keys(spec):              # e.g. model.d_model set by a bundle
        if key not in frame.columns and "." in key:
            frame[key] = [get_path(configs[r], key) for r in frame["run_id"]]
    metrics = [m for m in metrics if m not in texts]
    for m in metrics:
        frame[m] = pd.to_numeric(frame[m], errors="coerce")
    for m in _logged_only(spec, frame):            # a check on a metrics.csv-only metric
        vals = [_last_logged(path / "runs" / r / METRICS, m) for r in frame["run_id"]]
        if any(math.isfinite(v) for v in vals):
            frame[m] = vals
            metrics.append(m)
    variants = list(dict.fromkeys(frame["label"].tolist()))
    return Grid(manifest.get("name", path.name), path, spec,
                str(manifest.get("claim") or spec.get("claim") or "").strip(), frame,
                configs, axes, metrics, variants, len(manifest.get("runs", [])), unfinished)


def _logged_only(spec: dict, frame: pd.DataFrame) -> list[str]:
    """Metrics that checks or final-value plots name but result.json lacks."""
    items = (spec.get("checks") or []) + [p for p in spec.get("plots") or []
                                          if p.get("kind") in ("bar", "line", "heatmap")]
    return list(dict.fromkeys(i["metric"] for i in items
                              if i.get("metric") and i["metric"] not in frame.columns))


def _last_logged(path: Path, metric: str) -> float:
    """The value of `metric` at the last step it was logged (NaN if never)."""
    if not path.is_file():
        return math.nan
    df = read_metrics_csv(path)
    df = df[df["metric"] == metric]
    return float(df.loc[df["step"].idxmax(), "value"]) if len(df) else math.nan


def _label(entry: dict) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in (entry.get("axes") or {}).items()
             if v is not None]
    if entry.get("bundle"):
        parts.append(str(entry["bundle"]))
    return ", ".join(parts) or "base"


def read_metrics_csv(path: Path) -> pd.DataFrame:
    """Long-format metrics; a resumed run may repeat steps: the last row wins."""
    df = pd.read_csv(path)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df.drop_duplicates(["step", "metric"], keep="last").reset_index(drop=True)


def load_curves(grid: Grid, metric: str, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """(run_id, step, value) for `metric` over the given runs (default: all usable)."""
    runs = usable(grid.runs) if runs is None else runs
    parts = []
    for run_id in runs["run_id"]:
        f = grid.path / "runs" / run_id / METRICS
        if f.is_file():
            df = read_metrics_csv(f)
            df = df[df["metric"] == metric][["step", "value"]]
            parts.append(df.assign(run_id=run_id))
    if not parts:
        return pd.DataFrame(columns=["run_id", "step", "value"])
    return pd.concat(parts, ignore_index=True)[["run_id", "step", "value"]]


# ----------------------------------------------------------------------- selecting
def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def match_value(have, want) -> bool:
    if have == want:
        return True
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return str(have).lower() == str(want).lower()


def select(df: pd.DataFrame, selector: dict | None) -> pd.Series:
    """Rows matching every key; a list value means any of; null matches absent values."""
    mask = pd.Series(True, index=df.index)
    for key, want in (selector or {}).items():
        if key not in df.columns:
            raise KeyError(f"unknown key {key!r} (columns: {', '.join(map(str, df.columns))})")
        wants = want if isinstance(want, (list, tuple)) else [want]
        mask &= df[key].map(lambda h, ws=wants: any(
            (w is None and not _present(h)) or (w is not None and _present(h)
                                                and match_value(h, w)) for w in ws))
    return mask


def _slice(df: pd.DataFrame, cell: dict) -> pd.Series:
    """Rows equal to `cell` on its keys, or absent there (a run shared by every cell)."""
    mask = pd.Series(True, index=df.index)
    for key, want in cell.items():
        mask &= df[key].map(lambda h, w=want: not _present(h) or match_value(h, w))
    return mask


def usable(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] != "failed"]


def per_seed(df: pd.DataFrame, metric: str) -> pd.Series:
    """One value per seed: the mean over the (finite) runs of that seed."""
    vals = finite(df.set_index("seed")[metric]) if len(df) else pd.Series(dtype=float)
    return vals.groupby(level=0).mean()


def aggregate(grid: Grid, metrics: list[str]) -> pd.DataFrame:
    """Long table: one row per (variant, metric) with n, mean, std, sem and 95% CI."""
    rows = []
    runs = usable(grid.runs)
    for variant in grid.variants:
        sub = runs[runs["label"] == variant]
        if sub.empty:
            continue
        first = sub.iloc[0]
        for metric in metrics:
            if metric not in sub.columns:
                continue
            s = describe(per_seed(sub, metric))
            rows.append({"variant": variant, **{a: first.get(a) for a in grid.axes},
                         "metric": metric, "n": s.n, "mean": s.mean, "std": s.std,
                         "sem": s.sem, "ci95_low": s.ci_low, "ci95_high": s.ci_high})
    return pd.DataFrame(rows)


def baseline_comparisons(grid: Grid, metrics: list[str]) -> pd.DataFrame:
    """Each variant against the grid's baseline (same values on the axes the baseline
    selector leaves free), paired by seed where possible."""
    base_sel = grid.spec.get("baseline") or {}
    if not base_sel:
        return pd.DataFrame()
    runs = usable(grid.runs)
    base_mask = select(runs, base_sel)
    free = [a for a in grid.axes if a not in base_sel]
    rows = []
    for variant in grid.variants:
        sub = runs[runs["label"] == variant]
        if sub.empty or base_mask[sub.index].all():
            continue
        first = sub.iloc[0]
        cell = {a: first[a] for a in free if _present(first.get(a))}
        base = runs[base_mask & _slice(runs, cell)]
        if base.empty:
            continue
        for metric in metrics:
            if metric not in runs.columns:
                continue
            d = difference(per_seed(sub, metric), per_seed(base, metric))
            rows.append({"variant": variant, "baseline": ", ".join(base["label"].unique()),
                         "metric": metric, "n": d.n, "test": "paired" if d.paired else "Welch",
                         "mean": d.a.mean, "baseline_mean": d.b.mean, "diff": d.diff,
                         "ci95_low": d.ci_low, "ci95_high": d.ci_high, "p": d.p})
    return pd.DataFrame(rows)


def primary_metrics(grid: Grid) -> list[str]:
    """Metrics the spec's checks and plots name (extrapolation: every metric@L);
    without any, the val_* metrics."""
    names: list[str] = []
    for item in (grid.spec.get("checks") or []) + (grid.spec.get("plots") or []):
        m = item.get("metric")
        if not m:
            continue
        if item.get("kind") == "extrapolation":
            names += [c for c in grid.metrics if c == m or c.startswith(m + "@")]
        elif item.get("kind") != "curve" or m in grid.runs.columns:
            names.append(m)
    names = [n for n in dict.fromkeys(names) if n in grid.runs.columns]
    bases = list(dict.fromkeys(n.split("@")[0] for n in names))
    names.sort(key=lambda n: (bases.index(n.split("@")[0]), _length(n)))
    return names or [m for m in grid.metrics if m.startswith("val_")] or grid.metrics[:4]


def _length(metric: str) -> int:
    """The L of metric@L (-1 for a plain metric), for ordering."""
    at = metric.partition("@")[2]
    return int(at) if at.isdigit() else -1
