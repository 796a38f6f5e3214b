"""Loading a grid's stored results into one table (never trains, never imports torch).

A grid folder holds manifest.json (written by the grid runner) and runs/<id>/result.json
+ metrics.csv. `load` turns it into one DataFrame row per finished run, with a column per
axis key (``model.pos``, ``bundle``, ...), every metric, the run's cost and a
``diverged`` 0/1 column. Keys that plots or checks mention but that are not axes (e.g.
``model.d_model`` set through a bundle) are read from each run's stored config.

A metric a check or plot names that result.json lacks is read from metrics.csv: its last
logged value, with the suffix ``@init`` its value at step 0 (``grad_norm@init``), with
``@step<N>`` its last value logged by step N (``val_acc@step100``: learning speed), with
``@auc`` the area under its logged curve over the run (steps as a fraction of the last:
learning speed at an equal budget).

A run without result.json is unfinished: skipped and counted. A damaged result.json or
metrics.csv is skipped too and named in `GridResults.problems`, so the report covers the
rest and says what it left out; so is a metrics.csv or model.pt that no longer matches
the rows, size and hash its result.json records (store/integrity.py).
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from transformer.validation import same_value

from .. import store
from ..selector import present
from .kinds import selector_keys

COST = ["params", "steps", "tokens", "tokens_per_s", "train_s", "wall_s", "peak_mem_mb"]


@dataclasses.dataclass
class GridResults:
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
    problems: list[str] = dataclasses.field(default_factory=list)   # unreadable files
    damaged_curves: set[str] = dataclasses.field(default_factory=set)  # run ids: left out
    memo: dict = dataclasses.field(default_factory=dict, repr=False)  # derived tables

    @property
    def published(self) -> str:
        return str(self.spec.get("published") or "").strip()

    def axis_order(self, key: str) -> list:
        """Values of a key in the order the spec lists them (then first appearance)."""
        listed = list((self.spec.get("axes") or {}).get(key, []))
        if key in ("bundle", "experiment"):
            listed = list((self.spec.get(f"{key}s") or {}).keys())
        seen = [v for v in self.runs.get(key, pd.Series(dtype=object)).tolist()
                if present(v)]
        out = [v for v in listed if any(same_value(s, v) for s in seen)]
        for v in seen:
            if not any(same_value(v, o) for o in out):
                out.append(v)
        return out

    def metrics_file(self, run_id: str) -> Path:
        return store.runs_dir(self.path) / run_id / store.METRICS


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """Runs that count in statistics: diverged ones do, failed ones do not."""
    return df[df["status"] != "failed"]


def get_path(d: dict, dotted: str, default=None):
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def load(path: Path) -> GridResults:
    """Raises FileNotFoundError / store.Unreadable only for the manifest itself."""
    path = Path(path)
    manifest = store.read_manifest(path)
    spec = manifest.get("spec") or {}
    listed = [e for e in manifest.get("runs", []) if isinstance(e, dict) and "run_id" in e]
    # a run shared by several experiments is a row of each (grid/expand.py: `shared`)
    entries = [{**e, **member, "primary": not member} for e in listed
               for member in [{}, *(e.get("shared") or [])]]
    axes = list((spec.get("axes") or {}).keys())
    for entry in entries:
        axes += [k for k in (entry.get("axes") or {}) if k not in axes]
    if spec.get("bundles") or any(e.get("bundle") for e in entries):
        axes.append("bundle")
    if spec.get("experiments") or any(e.get("experiment") for e in entries):
        axes.insert(0, "experiment")
    # a ladder's size is an axis; N_s (grid/ladder.py) is the x of its trend
    ladder = ["size", "size_params"] if any(e.get("size") for e in entries) else []
    if ladder:
        axes.insert(int("experiment" in axes), "size")
    rows, configs, metrics, texts, unfinished, problems = [], {}, [], [], 0, []
    damaged: set[str] = set()          # runs whose metrics.csv does not match result.json
    for entry in entries:
        try:
            res = store.read_result(store.runs_dir(path) / entry["run_id"])
        except FileNotFoundError:
            unfinished += entry["primary"]
            continue
        except store.Unreadable as e:
            problems.append(str(e))
            continue
        rdir = store.runs_dir(path) / entry["run_id"]
        curve, weights = (store.integrity.metrics_problem(rdir, res),
                          store.integrity.model_problem(rdir, res))
        problems += [p for p in (curve, weights) if p]
        if curve:
            damaged.add(entry["run_id"])
        label = entry.get("label") or _label(entry)
        row = {"run_id": entry["run_id"], "label": label,
               "variant": entry.get("variant") or label,     # tuned grids: label minus tune
               "experiment": entry.get("experiment"),
               "bundle": entry.get("bundle"),
               "seed": entry.get("seed", get_path(res, "config.train.seed")),
               "status": res.get("status", "ok"), "reason": res.get("reason")}
        row.update({k: entry.get(k) for k in ladder})
        row.update((entry.get("axes") or {}))
        try:                                     # post-hoc evaluations: <metric>@<NAME>
            extra = store.eval_metrics(store.read_evals(store.runs_dir(path) / entry["run_id"]))
        except store.Unreadable as e:
            problems.append(str(e))
            extra = {}
        for k, v in {**(res.get("metrics") or {}), **extra}.items():
            row[k] = math.nan if v is None else v
            names = texts if isinstance(v, str) else metrics  # e.g. val_error@256: why
            if k not in names:
                names.append(k)
        row.update({k: res.get(k, math.nan) for k in COST})
        if "tokens" not in res:                  # results written before it was stored
            row["tokens"] = round(res.get("tokens_per_s", math.nan) * res.get("train_s", 0.0))
        row["diverged"] = int(row["status"] == "diverged")
        configs[entry["run_id"]] = res.get("config") or {}
        rows.append(row)
    base = ["run_id", "label", "variant"] + (["experiment"] if "experiment" in axes else []) + \
        ladder + ["bundle", "seed", "status", "reason"]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(
        base + [a for a in axes if a not in ("bundle", "experiment", "size")] + metrics + COST
        + ["diverged"] + texts)))
    for key in selector_keys(spec):              # e.g. model.d_model set by a bundle
        if key not in frame.columns and "." in key:
            frame[key] = [get_path(configs[r], key) for r in frame["run_id"]]
    metrics = [m for m in metrics if m not in texts]
    for m in metrics:
        frame[m] = pd.to_numeric(frame[m], errors="coerce")
    grid = GridResults(manifest.get("name", path.name), path, spec,
                       str(manifest.get("claim") or spec.get("claim") or "").strip(), frame,
                       configs, axes, metrics, list(dict.fromkeys(frame["label"].tolist())),
                       len(listed), unfinished, list(dict.fromkeys(problems)), damaged)
    for m in _logged_only(spec, frame):            # a check on a metrics.csv-only metric
        vals = [logged_value(grid, r, m) for r in frame["run_id"]]
        if any(math.isfinite(v) for v in vals):
            frame[m] = vals
            metrics.append(m)
    return grid


def _logged_only(spec: dict, frame: pd.DataFrame) -> list[str]:
    """Metrics that checks or final-value plots name but result.json lacks."""
    items = (spec.get("checks") or []) + [p for p in spec.get("plots") or []
                                          if p.get("kind") in ("bar", "line", "heatmap")]
    return list(dict.fromkeys(i["metric"] for i in items
                              if i.get("metric") and i["metric"] not in frame.columns))


def read_curves(grid: GridResults, run_id: str) -> pd.DataFrame | None:
    """A run's metrics.csv, or None when missing or damaged (damage is noted once): a
    truncated curve would average fewer seeds after its cut without a word."""
    if run_id in grid.damaged_curves:
        return None
    try:
        return store.read_metrics(grid.metrics_file(run_id))
    except FileNotFoundError:
        return None
    except store.Unreadable as e:
        if str(e) not in grid.problems:
            grid.problems.append(str(e))
        return None


INIT = "@init"      # metric@init: its value at step 0, before any update
AUC = "@auc"        # metric@auc: its mean over the run, by fraction of training
AT_STEP = re.compile(r"(.+)@step(\d+)")   # metric@step<N>: its last value by step N


def logged_value(grid: GridResults, run_id: str, metric: str) -> float:
    """The value of `metric` at the last step it was logged, for `<m>@init` the value
    of <m> at the first (the untrained model's), for `<m>@step<N>` its last value logged
    by step N (how far training had got by then: learning speed), for `<m>@auc` the area
    under its logged curve with steps as a fraction of the run's last (trapezoids; the
    curve's mean over training: learning speed at an equal budget, e.g. two families
    whose steps cost different FLOPs, each trained to the same FLOPs); NaN if none."""
    df = read_curves(grid, run_id)
    if df is None:
        return math.nan
    if metric.endswith(AUC):
        df = df[df["metric"] == metric[:-len(AUC)]].drop_duplicates("step", keep="last")
        df = df.sort_values("step", kind="stable")
        x, y = df["step"].to_numpy(float), df["value"].to_numpy(float)
        if len(df) < 2 or x[-1] <= 0:
            return math.nan
        x = x / x[-1]
        return float(((y[1:] + y[:-1]) * (x[1:] - x[:-1])).sum() / 2)
    at = AT_STEP.fullmatch(metric)
    if at:                                      # the last value logged by step N
        df = df[(df["metric"] == at[1]) & (df["step"] <= int(at[2]))]
        return float(df.loc[df["step"][::-1].idxmax(), "value"]) if len(df) else math.nan
    first = metric.endswith(INIT)
    df = df[df["metric"] == (metric[:-len(INIT)] if first else metric)]
    if not len(df):
        return math.nan
    return float(df.loc[df["step"].idxmin() if first else df["step"].idxmax(), "value"])


def _label(entry: dict) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in (entry.get("axes") or {}).items()
             if v is not None]
    if entry.get("bundle"):
        parts.append(str(entry["bundle"]))
    return ", ".join(parts) or "base"


def load_curves(grid: GridResults, metric: str, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """(run_id, step, value) for `metric` over the given runs (default: all usable)."""
    runs = usable(grid.runs) if runs is None else runs
    parts = []
    for run_id in runs["run_id"]:
        df = read_curves(grid, run_id)
        if df is not None:
            df = df[df["metric"] == metric][["step", "value"]]
            parts.append(df.assign(run_id=run_id))
    if not parts:
        return pd.DataFrame(columns=["run_id", "step", "value"])
    return pd.concat(parts, ignore_index=True)[["run_id", "step", "value"]]
