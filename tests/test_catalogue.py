"""Every shipped grid end to end at its smoke scale: trained, evaluated, reported.
(parallelism, a timing grid, has its own in test_measure.py.)"""
from __future__ import annotations

import json

import pytest
import yaml

from ablations import grid as grids
from ablations.cli import main as cli

TIMING = {"parallelism"}


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in sorted(grids.SHIPPED.glob("*.yaml"))
                                  if p.stem not in TIMING], ids=lambda p: p.stem)
def test_shipped_grid_smoke_trains_and_reports(path, tmp_path, capsys, monkeypatch):
    # in this process (the runner still forks its runs from slot workers): the CLI's
    # own start-up, twice per grid, was a quarter of this test's time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    spec = yaml.safe_load(path.read_text())
    results = tmp_path / "r"
    code = cli(["run", str(path), "--smoke", "--seeds", "0", "--workers", "2",
                "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 0, err                                  # a diverged run is a result
    assert "failed" not in err.split("runs:")[-1].splitlines()[0], err
    code = cli(["report", "--results", str(results), "--no-explainers", spec["name"]])
    assert code == 0, capsys.readouterr().err
    out = results / spec["name"]
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert len(verdicts) == len(spec["checks"])
    assert all("cannot evaluate" not in v["evidence"] for v in verdicts), verdicts
    readme = (out / "README.md").read_text()
    assert "not drawn" not in readme, readme
    assert len(list(out.glob("[0-9][0-9]_*.png"))) == len(spec["plots"])
    if spec.get("evaluate"):                               # post-hoc evaluations ran
        assert list(out.glob("runs/*/evals/*.json"))
