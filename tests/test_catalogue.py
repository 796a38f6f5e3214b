"""Every shipped grid end to end at its smoke scale: trained, evaluated, reported.
(parallelism, a timing grid, has its own in test_measure.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ablations import grid as grids

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"parallelism"}


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in sorted(grids.SHIPPED.glob("*.yaml"))
                                  if p.stem not in TIMING], ids=lambda p: p.stem)
def test_shipped_grid_smoke_trains_and_reports(path, tmp_path):
    spec = yaml.safe_load(path.read_text())
    results = tmp_path / "r"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "ablations", "run", str(path), "--smoke",
                          "--seeds", "0", "--workers", "2", "--results", str(results)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr                 # a diverged run is a result
    assert "failed" not in run.stderr.split("runs:")[-1].splitlines()[0], run.stderr
    rep = subprocess.run([sys.executable, "-m", "ablations", "report", "--results",
                          str(results), "--no-explainers", spec["name"]], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stderr
    out = results / spec["name"]
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert len(verdicts) == len(spec["checks"])
    assert all("cannot evaluate" not in v["evidence"] for v in verdicts), verdicts
    readme = (out / "README.md").read_text()
    assert "not drawn" not in readme, readme
    assert len(list(out.glob("[0-9][0-9]_*.png"))) == len(spec["plots"])
    if spec.get("evaluate"):                               # post-hoc evaluations ran
        assert list(out.glob("runs/*/evals/*.json"))
