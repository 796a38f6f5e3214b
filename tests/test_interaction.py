"""The `interaction` check (report/interaction.py): a difference of differences on
synthetic numbers (present, absent, the wrong sign, min_effect, each cell at its own
tuned rate, paired and Welch, in the Holm family) and its validation errors."""
from __future__ import annotations

import pytest

from ablations.cli import main as cli
from ablations.grid.replication_spec import reads
from ablations.report import table, verdicts
from ablations.report.kinds import CHECKS, check_entry, loaded
from ablations.report.stats import describe, holm
from transformer.validation import ConfigError

from report_fixtures import make_grid

loaded()

SEEDS = [0, 1, 2, 3]
NOISE = {0: 0.02, 1: -0.01, 2: 0.015, 3: -0.005}      # a seed's shared offset
# test loss per (placement, warmup): warmup helps post by 0.40, pre by 0.10
LOSS = {("post", 0): 2.00, ("post", 50): 1.60, ("pre", 0): 1.90, ("pre", 50): 1.80}
# per-seed wobble of the post-without-warmup cell only: the interaction's seed noise
WOBBLE = {0: 0.03, 1: -0.02, 2: 0.01, 3: -0.025}
AXES = {"model.norm_placement": ["post", "pre"], "train.warmup": [0, 50]}
CHECK = {"claim": "warmup matters more under Post-LN", "metric": "test_loss",
         "better": "higher", "compare": {"train.warmup": 0},
         "against": {"train.warmup": 50}, "more_in": {"model.norm_placement": "post"},
         "than_in": {"model.norm_placement": "pre"}}


def grid_of(tmp_path, loss, seeds=SEEDS, checks=(CHECK,), tune=None, wobble=WOBBLE):
    spec = {"name": "ix", "claim": "c", "axes": AXES, "seeds": seeds,
            "checks": list(checks), **({"tune": tune} if tune else {})}

    def metrics(cell, seed):
        key = (cell["model.norm_placement"], cell["train.warmup"])
        lr = cell.get("train.lr")
        worse = 0.0 if lr is None or lr == BEST_LR[key] else 0.5     # off its best rate
        v = loss[key] + NOISE[seed] + (wobble[seed] if key == ("post", 0) else 0.0) + worse
        return {"val_loss": v, "test_loss": v}
    make_grid(tmp_path, spec, metrics)
    return table.load(tmp_path / "ix")


def judge(grid, **over):
    return verdicts.evaluate({**CHECK, **over}, grid)


def test_an_interaction_that_is_there_is_supported(tmp_path):
    v = judge(grid_of(tmp_path, LOSS))
    assert v["kind"] == "interaction" and v["verdict"] == "supported"
    # 0.40 - 0.10 = +0.30 on average (the wobble's mean is -0.00125)
    assert "interaction (norm_placement=post − norm_placement=pre) +0.2988" in v["evidence"]
    assert "within norm_placement=post +0.398" in v["evidence"]
    assert "within norm_placement=pre +0.1, " in v["evidence"]
    assert "paired by seed" in v["evidence"] and v["p"] < 1e-3


def test_the_interaction_is_the_paired_difference_of_differences(tmp_path):
    v = judge(grid_of(tmp_path, LOSS))
    dod = describe([0.30 + WOBBLE[s] for s in SEEDS])      # the seed offsets cancel
    lo, hi = (float(x) for x in v["evidence"].split("interaction")[1]
              .split("95% CI [")[1].split("]")[0].split(", "))
    assert (lo, hi) == (pytest.approx(dod.ci_low, abs=1e-3),
                        pytest.approx(dod.ci_high, abs=1e-3))


def test_no_interaction_is_inconclusive_the_ci_includes_zero(tmp_path):
    same = {**LOSS, ("post", 0): 1.60 + 0.10}           # warmup helps both by 0.10
    v = judge(grid_of(tmp_path, same))
    assert v["verdict"] == "inconclusive"
    lo, hi = (float(x) for x in v["evidence"].split("interaction")[1]
              .split("95% CI [")[1].split("]")[0].split(", "))
    assert lo < 0 < hi
    assert "[power:" in v["evidence"]


def test_the_wrong_sign_is_not_supported(tmp_path):
    grid = grid_of(tmp_path, LOSS)
    swapped = judge(grid, more_in=CHECK["than_in"], than_in=CHECK["more_in"])
    assert swapped["verdict"] == "not_supported"
    # the same numbers read the other way: warmup's absence hurts, lower is better
    flipped = judge(grid, better="lower")
    assert flipped["verdict"] == "not_supported"
    both = judge(grid, better="lower", compare=CHECK["against"], against=CHECK["compare"])
    assert both["verdict"] == "supported"        # compare/against swapped and lower: same


def test_min_effect_as_for_compare(tmp_path):
    grid = grid_of(tmp_path, LOSS)
    assert judge(grid, min_effect=0.2)["verdict"] == "supported"
    too_big = judge(grid, min_effect=0.6)
    assert too_big["verdict"] == "not_supported" and "minimum effect 0.6" in too_big["evidence"]
    assert judge(grid, min_effect=0.3)["verdict"] == "inconclusive"   # 0.299 ± 0.041


BEST_LR = {("post", 0): 1e-3, ("post", 50): 1e-2, ("pre", 0): 1e-2, ("pre", 50): 1e-2}


def test_each_cell_is_read_at_its_own_tuned_rate(tmp_path):
    grid = grid_of(tmp_path, LOSS, tune={"train.lr": [1e-3, 1e-2]})
    v = judge(grid)
    assert v["verdict"] == "supported" and "+0.2988" in v["evidence"]   # no 0.5 penalty
    assert "n=4" in v["evidence"]
    fixed = judge(grid, tuned=False, where={"train.lr": 1e-2})   # post w0 off its best
    assert "+0.798" in fixed["evidence"]


def test_unmatched_seeds_fall_back_to_welch(tmp_path):
    grid = grid_of(tmp_path, LOSS)
    runs = grid.runs
    # the Pre-LN cells lose seed 3 and the Post-LN cells seed 0: the settings do not pair
    drop = (((runs["model.norm_placement"] == "pre") & (runs["seed"] == 3))
            | ((runs["model.norm_placement"] == "post") & (runs["seed"] == 0)))
    grid.runs = runs[~drop]
    v = judge(grid)
    assert "n=3, Welch" in v["evidence"] and v["verdict"] == "supported"


def test_a_missing_cell_is_an_error_that_names_it(tmp_path):
    grid = grid_of(tmp_path, LOSS)
    grid.runs = grid.runs[~((grid.runs["model.norm_placement"] == "pre")
                            & (grid.runs["train.warmup"] == 50))]
    v = judge(grid)
    assert v["verdict"] == "error"
    assert "warmup=50 within norm_placement=pre" in v["evidence"]


def test_the_interaction_is_one_of_the_holm_family(tmp_path):
    compare = {"claim": "warmup helps post", "metric": "test_loss", "better": "higher",
               "compare": {"train.warmup": 0}, "against": {"train.warmup": 50},
               "where": {"model.norm_placement": "post"}}
    grid = grid_of(tmp_path, LOSS, checks=(CHECK, compare, {**compare, "sanity": True}))
    judged = verdicts.evaluate_grid(grid)
    assert [v["kind"] for v in judged] == ["interaction", "compare", "compare"]
    assert [v["p_holm"] for v in judged[:2]] == pytest.approx(holm([v["p"] for v in
                                                                  judged[:2]]))
    assert max(v["p_holm"] / v["p"] for v in judged[:2]) == pytest.approx(2)   # 2 verdicts
    assert judged[2]["p_holm"] is None                                          # sanity


def test_a_replication_needs_only_the_four_cells():
    cell = lambda pl, w: {"model.norm_placement": pl, "train.warmup": w}
    assert all(reads(CHECK, cell(pl, w), None) for pl in ("post", "pre") for w in (0, 50))
    # sandwich has warmup 0 and 50 too, but is neither more_in nor than_in
    assert not any(reads(CHECK, cell("sandwich", w), None) for w in (0, 50))
    assert not reads({**CHECK, "where": {"train.warmup": 50}}, cell("post", 0), None)


# ------------------------------------------------------------------- validation
def entry(**over):
    item = {**CHECK, **over}
    return check_entry("checks[0]", {k: v for k, v in item.items() if v is not None}, CHECKS)


def test_more_in_and_than_in_make_an_interaction_not_a_compare():
    assert entry().name == "interaction"
    assert entry(more_in=None, than_in=None).name == "compare"


@pytest.mark.parametrize("over,field,words", [
    ({"than_in": None}, "checks[0]", "more_in needs than_in"),
    ({"more_in": None}, "checks[0]", "than_in needs more_in"),
    ({"against": None}, "checks[0]", "more_in needs against"),
    ({"than_in": {"model.norm_placement": "post"}}, "checks[0].than_in",
     "selects what more_in selects"),
    ({"against": {"train.warmup": 0}}, "checks[0].against", "selects what compare selects"),
    ({"more_in": {"train.warmup": 0, "model.norm_placement": "post"}}, "checks[0].more_in",
     "selects by train.warmup"),
    ({"min_effect": "big"}, "checks[0].min_effect", "expected a number"),
    ({"better": "up"}, "checks[0].better", "expected higher or lower"),
    ({"each": True}, "checks[0].each", "not a key of a interaction check"),
])
def test_bad_entries_are_one_line_errors_naming_the_field(over, field, words):
    with pytest.raises(ConfigError) as e:
        entry(**over)
    assert e.value.field == field and words in str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_interaction_in_a_grid_is_exit_2_before_anything_runs(tmp_path, capsys):
    text = """
name: ix_bad
claim: c
task: {name: copy, length: 6, n_tokens: 8}
base:
  model: {arch: decoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 4, batch_size: 8}
axes:
  model.norm_placement: [post, pre]
  train.warmup: [0, 2]
seeds: [0]
checks:
  - {claim: c, metric: val_loss, compare: {train.warmup: 0}, against: {train.warmup: 2},
     more_in: {model.norm_placement: post}, than_in: {model.norm_placment: pre}}
"""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checks[0].than_in" in err and "norm_placment" in err
    assert not (tmp_path / "r").exists()
