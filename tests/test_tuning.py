"""Tuned comparisons (`tune:`): every cell trained at each swept value, each variant
compared at its own best value chosen on validation and reported on the test split,
LR sensitivity, the loss-vs-lr plot; the test split itself (text halves its held-out
tail); and the errors a bad `tune:` gives before anything runs."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ablations.cli import main as cli
from ablations.report import command, table, tuning, verdicts
from ablations.tasks import build_task

from report_fixtures import make_grid

LRS = [1e-3, 3e-3, 1e-2]
# final val_loss per (ffn, lr): relu is best at 3e-3, swiglu at 1e-2; relu at 1e-2 diverges
VAL = {("relu", 1e-3): 1.30, ("relu", 3e-3): 1.10, ("relu", 1e-2): 1.00,
       ("swiglu", 1e-3): 1.60, ("swiglu", 3e-3): 1.20, ("swiglu", 1e-2): 1.00}
SPEC = {"name": "tuned", "claim": "gated FFNs help", "seeds": [0, 1, 2],
        "axes": {"model.ffn": ["relu", "swiglu"]}, "tune": {"train.lr": LRS},
        "checks": [
            {"claim": "swiglu beats relu at each one's best lr", "metric": "test_loss",
             "better": "lower", "compare": {"model.ffn": "swiglu"},
             "against": {"model.ffn": "relu"}},
            {"claim": "at a fixed small lr swiglu is worse", "metric": "test_loss",
             "better": "higher", "tuned": False, "where": {"train.lr": 1e-3},
             "compare": {"model.ffn": "swiglu"}, "against": {"model.ffn": "relu"}}],
        "plots": [{"kind": "tune", "metric": "val_loss"},
                  {"kind": "bar", "metric": "test_loss", "x": "model.ffn"}]}


def metrics(cell, seed):
    v = VAL[(cell["model.ffn"], cell["train.lr"])] + 0.01 * seed
    return {"val_loss": v, "test_loss": v + 0.05 - (0.1 if cell["model.ffn"] == "swiglu"
                                                     else 0.0)}


def status(cell, seed):
    return "diverged" if (cell["model.ffn"], cell["train.lr"]) == ("relu", 1e-2) else "ok"


@pytest.fixture
def grid(tmp_path):
    make_grid(tmp_path, SPEC, metrics, status=status)
    return table.load(tmp_path / "tuned")


def test_each_variant_is_chosen_at_its_lowest_validation_loss(grid):
    table = tuning.sweep(grid)
    best = table[table["best"]].set_index("variant")["train.lr"].to_dict()
    # relu's 1e-2 runs diverged: they score their initial loss, so 3e-3 wins
    assert best == {"ffn=relu": 3e-3, "ffn=swiglu": 1e-2}
    assert table["n"].tolist() == [3] * 6
    assert table.loc[table["variant"] == "ffn=relu", "diverged"].tolist() == [0, 0, 3]


def test_tuned_runs_are_the_best_lr_runs_labelled_by_variant(grid):
    runs = tuning.tuned_runs(grid)
    assert sorted(runs["label"].unique()) == ["ffn=relu", "ffn=swiglu"]
    assert len(runs) == 6
    got = runs.groupby("label")["train.lr"].unique().map(list).to_dict()
    assert got == {"ffn=relu": [3e-3], "ffn=swiglu": [1e-2]}


def test_lr_sensitivity_is_the_mean_excess_over_the_best(grid):
    sens = tuning.sensitivity(grid).set_index("variant")
    # a diverged run scores its loss at initialisation: final + 1.5 in the fixture
    relu = [1.30, 1.10, 1.00 + 1.5]
    relu = [v + 0.01 for v in relu]                 # mean over seeds 0, 1, 2
    assert sens.loc["ffn=relu", "best_val_loss"] == pytest.approx(min(relu))
    assert sens.loc["ffn=relu", "sensitivity"] == pytest.approx(
        sum(v - min(relu) for v in relu) / 3)
    swiglu = [1.61, 1.21, 1.01]
    assert sens.loc["ffn=swiglu", "sensitivity"] == pytest.approx(
        sum(v - 1.01 for v in swiglu) / 3)
    assert sens.loc["ffn=relu", "diverged"] == 3 and sens.loc["ffn=relu", "runs"] == 9


def test_checks_compare_at_the_tuned_lr_unless_told_otherwise(grid):
    tuned, fixed = verdicts.evaluate_grid(grid)
    assert tuned["verdict"] == "supported"
    assert "ffn=swiglu 0.96" in tuned["evidence"]          # 1.01 + 0.05 - 0.1 at lr 1e-2
    assert fixed["verdict"] == "supported"                  # 1.56 vs 1.36 at lr 1e-3


def test_a_choice_at_the_edge_of_the_sweep_is_flagged_where_it_is_read(grid, tmp_path):
    # swiglu's best is 1e-2, the highest swept rate: its optimum may lie beyond the sweep
    assert tuning.edges(grid) == {"ffn=swiglu": ["train.lr 0.01, the highest swept"]}
    tuned, fixed = verdicts.evaluate_grid(grid)
    assert tuned["edge"] == ["ffn=swiglu: train.lr 0.01, the highest swept"]
    assert "Tuned at the edge of the sweep" in verdicts.in_words(tuned)
    assert "edge" not in fixed                      # `tuned: false` reads every rate
    command.report_grid(tmp_path / "tuned")
    readme = (tmp_path / "tuned" / "README.md").read_text()
    assert "0.01 (edge)" in readme and "0.003 (edge)" not in readme
    assert "**At the edge of the sweep:** 1 of 2 variants" in readme
    saved = json.loads((tmp_path / "tuned" / "verdicts.json").read_text())
    assert saved[0]["edge"] and "edge" not in saved[1]


def test_no_edge_inside_the_sweep(tmp_path):
    # every variant's best is 3e-3, inside [1e-3, 1e-2]
    def inside(cell, seed):
        v = 1.0 + abs(math.log10(cell["train.lr"] / 3e-3)) + 0.01 * seed
        return {"val_loss": v, "test_loss": v}
    make_grid(tmp_path, SPEC, inside)
    grid = table.load(tmp_path / "tuned")
    assert tuning.edges(grid) == {}
    assert "edge" not in verdicts.evaluate_grid(grid)[0]


def test_a_metric_at_initialisation_is_not_flagged(tmp_path):
    # it does not depend on the rate, so where the rate was chosen says nothing about it
    spec = {**SPEC, "checks": [{**SPEC["checks"][0], "metric": "grad@init"}]}
    make_grid(tmp_path, spec, lambda cell, seed: {**metrics(cell, seed),
                                                  "grad@init": 1.0 + seed})
    grid = table.load(tmp_path / "tuned")
    assert tuning.edges(grid)                        # swiglu chose the highest rate
    assert "edge" not in verdicts.evaluate_grid(grid)[0]


def test_report_writes_the_tuned_section_plot_and_table(grid, tmp_path):
    command.report_grid(tmp_path / "tuned")
    readme = (tmp_path / "tuned" / "README.md").read_text()
    assert "## Tuned comparison" in readme and "chosen lr" in readme
    assert "LR sensitivity" in readme and "3/9" in readme
    sweep = pd.read_csv(tmp_path / "tuned" / "tuning.csv")
    assert len(sweep) == 6 and sweep["best"].sum() == 2
    assert (tmp_path / "tuned" / "01_tune_val_loss.png").exists()
    plotted = pd.read_csv(tmp_path / "tuned" / "01_tune_val_loss.csv")
    assert sorted(plotted["train.lr"].unique()) == LRS
    bars = pd.read_csv(tmp_path / "tuned" / "02_bar_test_loss_by_ffn.csv")
    assert bars["n"].tolist() == [3, 3]                       # one lr per variant
    assert "variant" in pd.read_csv(tmp_path / "tuned" / "summary.csv").columns


def test_an_untuned_grid_reads_every_run(tmp_path):
    spec = {k: v for k, v in SPEC.items() if k not in ("tune", "checks", "plots")}
    spec["axes"] = {**spec["axes"], "train.lr": LRS}
    make_grid(tmp_path, spec, metrics)
    g = table.load(tmp_path / "tuned")
    assert not tuning.is_tuned(g) and len(tuning.runs_for(g, {})) == 18
    command.report_grid(tmp_path / "tuned")
    assert "variant" not in pd.read_csv(tmp_path / "tuned" / "summary.csv").columns
    assert not (tmp_path / "tuned" / "tuning.csv").exists()


# -- the grid spec and the runner ---------------------------------------------------------
GRID = """
name: tiny_tune
claim: a tuned comparison runs end to end
task: {name: copy, length: 6, n_tokens: 8}
base:
  model: {arch: decoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 12, batch_size: 8, warmup: 2, eval_every: 12, eval_batches: 2,
          test_batches: 2, log_every: 6, diag_every: 12, ckpt_every: 12, threads: 1}
axes:
  model.ffn: [relu, swiglu]
tune:
  train.lr: [0.001, 0.01]
seeds: [0]
checks:
  - {claim: swiglu is no worse, metric: test_loss, better: lower,
     compare: {model.ffn: swiglu}, against: {model.ffn: relu}}
plots:
  - {kind: tune, metric: val_loss}
"""


@pytest.mark.slow
def test_a_tuned_grid_trains_every_lr_and_reports_on_the_test_split(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRID)
    results = tmp_path / "r"
    assert cli(["run", str(path), "--results", str(results), "--workers", "1"]) == 0
    manifest = json.loads((results / "tiny_tune" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 4
    assert {e["variant"] for e in manifest["runs"]} == {"ffn=relu", "ffn=swiglu"}
    assert {e["axes"]["train.lr"] for e in manifest["runs"]} == {0.001, 0.01}
    for e in manifest["runs"]:
        res = json.loads((results / "tiny_tune" / "runs" / e["run_id"] / "result.json")
                         .read_text())
        assert math.isfinite(res["metrics"]["test_loss"])
        assert res["metrics"]["test_loss"] != res["metrics"]["val_loss"]   # other draws
    assert cli(["report", "--results", str(results), "--no-explainers", "-q"]) == 0
    assert (results / "tiny_tune" / "tuning.csv").exists()
    assert "## Tuned comparison" in (results / "tiny_tune" / "README.md").read_text()


@pytest.mark.parametrize("edit,words", [
    (("  train.lr: [0.001, 0.01]", "  train.lr: [0.001]"), ["tune.train.lr", "at least 2"]),
    (("  train.lr: [0.001, 0.01]", "  train.lr: [0.001, 0.001]"), ["duplicate value"]),
    (("  train.lr: [0.001, 0.01]", "  model.ffn: [relu, gelu]"), ["tune", "also an axis"]),
    (("  train.lr: [0.001, 0.01]", "  train.lrr: [0.1, 0.2]"), ["lrr"]),
    (("test_batches: 2, ", ""), ["tune", "test_batches"]),
    (("tune:\n  train.lr: [0.001, 0.01]\n", ""), ["checks[0].tuned", "tunes nothing"]),
])
def test_bad_tune_is_one_line_exit_2_before_anything_runs(tmp_path, capsys, edit, words):
    text = GRID.replace(*edit)
    if "tunes nothing" in words:
        text = text.replace("against: {model.ffn: relu}}", "against: {model.ffn: relu},\n"
                            "     tuned: false}").replace("{kind: tune, ", "{kind: bar, ")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "r").exists()


# -- the test split ------------------------------------------------------------------------
def test_text_test_split_halves_the_held_out_text_and_is_disjoint_from_val():
    plain = build_task({"name": "lm", "seq_len": 32}, 0, "decoder")
    split = build_task({"name": "lm", "seq_len": 32}, 0, "decoder", test_split=True)
    lo, n = plain.region("val")
    assert (lo, n) == (plain.n_train, plain.n_val)              # unchanged without a test split
    (vlo, vn), (tlo, tn) = split.region("val"), split.region("test")
    assert vlo == lo and vlo + vn == tlo and tlo + tn == lo + n
    val = split.val_sets(4, 8, "cpu")[""]
    test = split.val_sets(4, 8, "cpu", "test")[""]
    assert all(not any(v["input"].equal(t["input"]) for t in test) for v in val)


def test_generated_test_split_is_other_draws():
    task = build_task({"name": "copy"}, 0, "decoder", test_split=True)
    val, test = task.val_sets(2, 8, "cpu")[""], task.val_sets(2, 8, "cpu", "test")[""]
    assert not val[0]["input"].equal(test[0]["input"])
    again = build_task({"name": "copy"}, 0, "decoder").val_sets(2, 8, "cpu")[""]
    assert val[0]["input"].equal(again[0]["input"])           # val is the same either way


def test_a_scale_narrows_the_sweep_and_may_not_invent_one(tmp_path, capsys):
    from ablations import grid as grids
    path = tmp_path / "g.yaml"
    path.write_text(GRID + "smoke: {tune: {train.lr: [0.01]}}\n")
    full, smoke = grids.expand(grids.load(path)), grids.expand(grids.load(path), scale="smoke")
    assert {r.config["train"]["lr"] for r in full} == {0.001, 0.01} and len(full) == 4
    assert {r.config["train"]["lr"] for r in smoke} == {0.01} and len(smoke) == 2
    assert {r.run_id for r in smoke} < {r.run_id for r in full}      # the same runs
    path.write_text(GRID + "smoke: {tune: {train.warmup: [0, 2]}}\n")
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "smoke.tune.train.warmup: not tuned by the grid" in err and err.count("\n") == 1
