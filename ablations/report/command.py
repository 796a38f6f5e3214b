"""`ablate report [--results DIR] [GRID ...]`: tables, plots, verdicts and READMEs,
regenerated from stored results in seconds (never trains).

Per grid (results/<grid>/): summary.csv (one row per finished run), aggregate.csv
(variant x metric: n, mean, std, 95% CI), comparisons.csv (each variant against the
baseline), tuning.csv (tuned grids: every variant at every swept value),
NN_<kind>_<metric>.png + .csv per `plots:` entry, verdicts.json (also each replication's,
under replication/) and README.md. Then
results/explainers/ and results/REPORT.md (every grid in the folder).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from transformer.validation import ConfigError

from .. import plugins, store
from . import analysis, plots, replication, table, tuning, verdicts
from .family import verdicts_only
from .index import report_index
from .kinds import loaded
from .readme import grid_readme

PLOT_FILE = re.compile(r"^\d\d_(%s)(_.*)?\.(png|csv)$" % "|".join(loaded()[1]))


def add_arguments(parser) -> None:
    parser.add_argument("grids", nargs="*", metavar="GRID",
                        help="grid names under the results folder (default: all)")
    parser.add_argument("--results", default="results", type=Path,
                        help="results folder (default: results)")
    parser.add_argument("--no-explainers", action="store_true",
                        help="skip the explainer figures (results/explainers/)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write the report here instead of into the results folder "
                             "(e.g. of a read-only store); the runs are only read")


def main(args) -> int:
    root = Path(args.results)
    if not root.is_dir():
        print(f"ablate report: error: results folder {str(root)!r} does not exist",
              file=sys.stderr)
        return 2
    available = {p.name: p for p in store.find_grids(root)}
    unknown = [g for g in args.grids if g not in available]
    if unknown:
        print(f"ablate report: error: unknown grid {unknown[0]!r} in {root}; available: "
              f"{', '.join(sorted(available)) or 'none'}", file=sys.stderr)
        return 2
    say = (lambda *a: None) if args.quiet else print
    if not available:
        say(f"no grid results under {root} (run `ablate run GRID.yaml` first)")
    problems: list[str] = []
    for name in args.grids or list(available):    # the variants their models need
        problems += load_plugins(available[name])
    out = Path(args.out) if args.out else root
    for name in args.grids or list(available):
        try:
            say(report_grid(available[name], problems, out / name))
        except store.Unreadable as e:           # the grid's manifest itself
            problems.append(str(e))
    if not args.no_explainers:
        from . import explainers
        try:
            notes = explainers.make_all(root, problems, out)
        except Exception as e:              # a figure is never the end of the report
            notes = [f"explainers: cannot use run ({type(e).__name__}: {e})"]
        for note in notes:
            if note.startswith("explainers: cannot"):
                problems.append(note.removeprefix("explainers: "))
            else:
                say(note)
    store.atomic_write_text(out / "REPORT.md", report_index(root, out))
    say(f"wrote {out / 'REPORT.md'}")
    for problem in problems:                     # one line each, after the work
        print(f"ablate report: skipped {problem}", file=sys.stderr)
    return 1 if problems else 0


def report_grid(path: Path, problems: list[str] | None = None,
                out: Path | None = None) -> str:
    """Regenerate everything for one grid (into `out`, default its own folder); returns a
    one-line summary. Damaged run files are left out and appended to `problems`."""
    grid = table.load(path)
    path = Path(out) if out is not None else path     # from here on: where files go
    path.mkdir(parents=True, exist_ok=True)
    tuned = tuning.is_tuned(grid)
    summary = grid.runs if tuned else grid.runs.drop(columns="variant")
    store.atomic_write_text(path / "summary.csv", summary.to_csv(index=False))
    if tuned and len(grid.runs):
        store.atomic_write_text(path / "tuning.csv", tuning.sweep(grid).to_csv(index=False))
    metrics = analysis.primary_metrics(grid) if len(grid.runs) else []
    agg = analysis.aggregate(grid, metrics) if metrics else pd.DataFrame()
    store.atomic_write_text(path / "aggregate.csv", agg.to_csv(index=False))
    comp = analysis.baseline_comparisons(grid, metrics) if metrics else pd.DataFrame()
    if not comp.empty:
        store.atomic_write_text(path / "comparisons.csv", comp.to_csv(index=False))
    for f in path.iterdir():                      # stale plots of an older spec
        if PLOT_FILE.match(f.name):
            f.unlink()
    drawn = plots.plot_grid(grid, path) if len(grid.runs) else []
    verdict_list = verdicts.evaluate_grid(grid)
    replication.attach(verdict_list, replication.judge(grid, problems))
    store.atomic_write_json(path / "verdicts.json", verdict_list)
    store.atomic_write_text(path / "README.md",
                            grid_readme(grid, agg, comp, drawn, verdict_list))
    if problems is not None:
        problems.extend(grid.problems)
        problems.extend(f"{grid.name}: plot {d['index'] + 1} ({d['spec'].get('kind')}) "
                        f"failed: {d['skipped']}" for d in drawn if d.get("failed"))
        problems.extend(f"{grid.name}: check {i + 1} ({v['claim'][:60]}): {v['evidence']}"
                        for i, v in enumerate(verdict_list) if v["verdict"] == "error")
    counts = grid.runs["status"].value_counts().to_dict()
    counted = verdicts_only(verdict_list)
    tally = ", ".join(f"{sum(v['verdict'] == k for v in counted)} {k}"
                      for k in verdicts.VERDICTS if any(v["verdict"] == k for v in counted))
    n_sanity = len(verdict_list) - len(counted)
    tally = (tally or "none") + f" (+ {n_sanity} sanity)" if n_sanity else tally
    skipped = [d for d in drawn if "skipped" in d]
    notes = "".join(f"\n  plot {d['index'] + 1} ({d['spec'].get('kind')}) not drawn: "
                    f"{d['skipped']}" for d in skipped)
    n_runs = grid.runs["run_id"].nunique()          # a run shared by experiments once
    return (f"{grid.name}: {n_runs} runs ({grid.n_unfinished} unfinished, "
            f"{counts.get('diverged', 0)} diverged, {counts.get('failed', 0)} failed), "
            f"{len(drawn) - len(skipped)} plots, verdicts: {tally or 'no checks'}{notes}")


def load_plugins(grid_dir: Path) -> list[str]:
    """Import the plugins a grid ran with (its manifest records them), looked up beside
    its grid file too, so figures can rebuild plugin variants; problems, one line each."""
    try:
        manifest = store.read_manifest(grid_dir)
    except (FileNotFoundError, store.Unreadable):
        return []                                 # reported when the grid is read
    spec, applied = manifest.get("spec") or {}, manifest.get("applied") or {}
    wanted = list(dict.fromkeys([*(spec.get("plugins") or []),
                                 *(applied.get("plugins") or [])]))
    if not wanted:
        return []
    grid_file = manifest.get("grid_file")
    try:
        plugins.import_modules(wanted, search=[Path(grid_file).parent] if grid_file else [])
    except ConfigError as e:
        return [f"{grid_dir.name}: {e} (figures that rebuild its models are skipped)"]
    return []
