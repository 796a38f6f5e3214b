"""A decided verdict whose gap is still closing when training stops says so
(report/budget.py), for every check kind that judges a gap at the end of training."""
from __future__ import annotations

import json

import pytest

from ablations.report import table, verdicts
from ablations.report.budget import _is_closing
from ablations.report.kinds import loaded

from report_fixtures import as_ladder, make_grid

SEEDS = [0, 1, 2, 3]
SIZES = {"s": 10_000, "l": 100_000}
# test_loss per FFN: swiglu better by 0.1 with little seed noise (a supported verdict)
FINAL = {"relu": 1.10, "swiglu": 1.00}
CHECKS_BY_KIND = {
    "compare": {"claim": "swiglu beats relu", "metric": "test_loss", "better": "lower",
                "compare": {"model.ffn": "swiglu"}, "against": {"model.ffn": "relu"}},
    "best": {"claim": "swiglu is the best FFN", "metric": "test_loss", "better": "lower",
             "best": {"model.ffn": "swiglu"}},
    "threshold": {"claim": "swiglu's loss stays above 0.95", "metric": "test_loss",
                  "select": {"model.ffn": "swiglu"}, "above": 0.95},
    "ladder": {"claim": "swiglu's gain holds", "metric": "test_loss", "better": "lower",
               "across": "size", "compare": {"model.ffn": "swiglu"},
               "against": {"model.ffn": "relu"}, "expect": ["holds", "grows", "shrinks"]},
}


def test_every_kind_that_judges_a_gap_is_covered_here():
    checks, _ = loaded()
    assert {name for name, kind in checks.items() if kind.gaps} == set(CHECKS_BY_KIND)


def build(tmp_path, kind: str, relu_half: float, noise: float = 0.002):
    """A grid whose val_loss curves run 4.0 -> half -> final over steps 0, 50, 100:
    swiglu's half at 2.0, relu's at `relu_half`."""
    spec = {"name": kind, "claim": "c", "seeds": SEEDS, "axes": {"model.ffn": ["relu", "swiglu"]},
            "checks": [CHECKS_BY_KIND[kind]]}
    if kind == "ladder":
        spec["ladder"] = {"sizes": {s: {"model.d_model": 8} for s in SIZES},
                          "tokens_per_param": 2}
    cells = ([{"model.ffn": f, "_size": s} for s in SIZES for f in FINAL]
             if kind == "ladder" else None)
    gdir = make_grid(tmp_path, spec, lambda c, seed: {
        "test_loss": FINAL[c["model.ffn"]] + noise * ((seed - 1.5) if c["model.ffn"] == "relu"
                                                      else 0.5 * (seed % 2))},
        cells=cells)
    if kind == "ladder":
        as_ladder(gdir, SIZES)
    for e in json.loads((gdir / "manifest.json").read_text())["runs"]:
        ffn = e["axes"]["model.ffn"]
        half = 2.0 if ffn == "swiglu" else relu_half
        points = [(0, 4.0), (50, half), (100, FINAL[ffn])]
        (gdir / "runs" / e["run_id"] / "metrics.csv").write_text(
            "step,metric,value\n" + "".join(f"{s},val_loss,{v}\n" for s, v in points))
    return table.load(gdir)


@pytest.mark.parametrize("kind", sorted(CHECKS_BY_KIND))
def test_a_gap_closing_fast_is_flagged_and_said(tmp_path, kind):
    # swiglu − relu: -0.5 at step 50, -0.1 at step 100: one more such doubling reverses it;
    # swiglu − its bound 0.95: +1.05, then +0.05
    v = verdicts.evaluate_grid(build(tmp_path, kind, relu_half=2.5))[0]
    assert v["verdict"] == "supported", v["evidence"]
    said = ("the bound 0.95: val_loss +1.05 at half the steps -> +0.05" if kind == "threshold"
            else "val_loss -0.5 at half the steps -> -0.1")
    assert v["closing"] and all(f"{said} at the last (100 steps)" in c for c in v["closing"])
    assert len(v["closing"]) == (len(SIZES) if kind == "ladder" else 1)
    assert "*Gap still closing when training stops*" in verdicts.in_words(v)


@pytest.mark.parametrize("relu_half", [2.1, 2.0, 1.9], ids=["steady", "opening", "crossed"])
def test_a_steady_or_opening_gap_is_not(tmp_path, relu_half):
    v = verdicts.evaluate_grid(build(tmp_path, "compare", relu_half=relu_half))[0]
    assert v["verdict"] == "supported" and "closing" not in v
    assert "still closing" not in verdicts.in_words(v)


def test_an_undecided_verdict_carries_no_caution(tmp_path):
    # the same closing curves, but seed noise larger than the effect: inconclusive
    v = verdicts.evaluate_grid(build(tmp_path, "compare", relu_half=2.5, noise=0.3))[0]
    assert v["verdict"] == "inconclusive" and "closing" not in v


def test_runs_without_an_evaluation_near_half_their_steps_are_not_judged(tmp_path):
    grid = build(tmp_path, "compare", relu_half=2.5)
    for rdir in (grid.path / "runs").iterdir():     # only the first and the last evaluation
        lines = (rdir / "metrics.csv").read_text().splitlines()
        (rdir / "metrics.csv").write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    v = verdicts.evaluate_grid(table.load(grid.path))[0]
    assert v["verdict"] == "supported" and "closing" not in v


@pytest.mark.parametrize("half,end,closing", [
    (-0.5, -0.1, True), (0.5, 0.25, True), (0.5, 0.26, False), (0.1, 0.2, False),
    (-0.1, 0.05, False), (0.3, 0.0, False)])
def test_closing_means_one_more_doubling_like_the_last_reaches_zero(half, end, closing):
    assert _is_closing(half, end) is closing
