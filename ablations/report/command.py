"""`ablate report [--results DIR] [GRID ...]`: tables, plots, verdicts and READMEs,
regenerated from stored results in seconds (never trains).

Per grid (results/<grid>/): summary.csv (one row per finished run), aggregate.csv
(variant x metric: n, mean, std, 95% CI), comparisons.csv (each variant against the
baseline), tuning.csv (tuned grids: every variant at every swept value),
NN_<kind>_<metric>.png + .csv per `plots:` entry, verdicts.json and README.md. Then
results/explainers/ and results/REPORT.md (every grid in the folder).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from .. import store
from . import analysis, plots, tuning, verdicts
from .index import report_index
from .kinds import loaded
from .readme import grid_readme
from .results import load as load_results

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
    results = Path(args.results)
    if not results.is_dir():
        print(f"ablate report: error: results folder {str(results)!r} does not exist",
              file=sys.stderr)
        return 2
    available = {p.name: p for p in store.find_grids(results)}
    unknown = [g for g in args.grids if g not in available]
    if unknown:
        print(f"ablate report: error: unknown grid {unknown[0]!r} in {results}; available: "
              f"{', '.join(sorted(available)) or 'none'}", file=sys.stderr)
        return 2
    say = (lambda *a: None) if args.quiet else print
    if not available:
        say(f"no grid results under {results} (run `ablate run GRID.yaml` first)")
    problems: list[str] = []
    out = Path(args.out) if args.out else results
    for name in args.grids or list(available):
        try:
            say(report_grid(available[name], problems, out / name))
        except store.Unreadable as e:           # the grid's manifest itself
            problems.append(str(e))
    if not args.no_explainers:
        from . import explainers
        for note in explainers.make_all(results, problems, out):
            say(note)
    store.atomic_write_text(out / "REPORT.md", report_index(results, out))
    say(f"wrote {out / 'REPORT.md'}")
    for problem in problems:                     # one line each, after the work
        print(f"ablate report: skipped {problem}", file=sys.stderr)
    return 1 if problems else 0


def report_grid(path: Path, problems: list[str] | None = None,
                out: Path | None = None) -> str:
    """Regenerate everything for one grid (into `out`, default its own folder); returns a
    one-line summary. Damaged run files are left out and appended to `problems`."""
    grid = load_results(path)
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
    store.atomic_write_json(path / "verdicts.json", verdict_list)
    store.atomic_write_text(path / "README.md",
                            grid_readme(grid, agg, comp, drawn, verdict_list))
    if problems is not None:
        problems.extend(grid.problems)
    counts = grid.runs["status"].value_counts().to_dict()
    tally = ", ".join(f"{sum(v['verdict'] == k for v in verdict_list)} {k}"
                      for k in verdicts.VERDICTS if any(v["verdict"] == k for v in verdict_list))
    skipped = [d for d in drawn if "skipped" in d]
    notes = "".join(f"\n  plot {d['index'] + 1} ({d['spec'].get('kind')}) not drawn: "
                    f"{d['skipped']}" for d in skipped)
    return (f"{grid.name}: {len(grid.runs)} runs ({grid.n_unfinished} unfinished, "
            f"{counts.get('diverged', 0)} diverged, {counts.get('failed', 0)} failed), "
            f"{len(drawn) - len(skipped)} plots, verdicts: {tally or 'no checks'}{notes}")
