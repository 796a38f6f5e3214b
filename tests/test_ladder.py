"""Scale ladders: the spec key and its validation (grid/ladder.py), expansion with the
budget rule, the dry-run's size table, and the trend check and plots (report/trend.py,
report/plot_ladder.py) on synthetic numbers: the fit, and each trend outcome."""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from ablations import grid as grids
from ablations.cli import main as cli
from ablations.grid.ladder import nonembedding_params, tokens_per_step
from ablations.report import plots, table, verdicts
from ablations.report.kinds import CHECKS, check_entry, loaded
from ablations.report.stats import t_ppf
from ablations.report.trend import fit_slope
from report_fixtures import as_ladder, make_grid

loaded()

LADDER = """
name: lad
claim: The gated gain holds as models grow.
task: {name: lm, source: python-docs, tokenizer: char, seq_len: 32}
base:
  model: {arch: decoder, n_heads: 2, n_layers: 1, pos: rope}
  train: {batch_size: 8, test_batches: 2}
seeds: [0, 1]
experiments:
  main:
    axes: {model.ffn: [gelu, swiglu]}
  ladder:
    axes: {model.ffn: [gelu, swiglu]}
    tune: {train.lr: [3.0e-3, 1.0e-2]}
    ladder:
      sizes:
        xs: {model.d_model: 16}
        s: {model.d_model: 32, model.n_layers: 2}
        m: {model.d_model: 64, model.n_layers: 2}
      tokens_per_param: 2
      min_steps: 40
smoke:
  ladder:
    sizes: {a: {model.d_model: 8}, b: {model.d_model: 16}, c: {model.d_model: 24}}
    tokens_per_param: 0.01
    min_steps: 3
checks:
  - {claim: gated gain, metric: test_loss, compare: {model.ffn: swiglu},
     against: {model.ffn: gelu}, across: size, expect: [holds, grows],
     where: {experiment: ladder}}
plots:
  - {kind: ladder_effect, metric: test_loss, compare: {model.ffn: swiglu},
     against: {model.ffn: gelu}, where: {experiment: ladder}}
  - {kind: ladder_scaling, metric: test_loss, where: {experiment: ladder}}
"""


def write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def edit(text, old, new):
    assert old in text, old
    return text.replace(old, new)


def test_a_ladder_multiplies_cells_by_size_and_derives_steps(tmp_path):
    g = grids.load(write(tmp_path, LADDER))
    runs = grids.expand(g)
    lad = [r for r in runs if r.experiment == "ladder"]
    assert len(lad) == 3 * 2 * 2 * 2 and {r.size for r in lad} == {"xs", "s", "m"}
    assert all(r.label.startswith(f"ladder: size={r.size}, ffn=") for r in lad)
    assert all(r.variant == r.label.rsplit(", lr=", 1)[0] for r in lad)   # chosen per size
    for size in ("xs", "s", "m"):
        here = [r for r in lad if r.size == size]
        counts = {nonembedding_params(r.config["model"]) for r in here}
        n = here[0].size_params
        assert n == round(sum(counts) / len(counts))            # the mean over its cells
        want = max(40, math.ceil(2 * n / tokens_per_step(here[0].config)))
        assert {r.config["train"]["steps"] for r in here} == {want}
        # the default warmup (50) is capped at a third of a short run's steps
        assert {r.config["train"]["warmup"] for r in here} == {min(50, want // 3)}
        assert tokens_per_step(here[0].config) == 8 * 32
        assert here[0].manifest_entry()["size"] == size
    assert lad[-1].config["model"]["n_layers"] == 2 and lad[0].config["model"]["d_model"] == 16
    # the other experiment is untouched by the ladder: no size, same ids as without it
    plain = grids.expand(grids.load(write(tmp_path, LADDER.split("  ladder:\n    axes")[0])))
    main = [r for r in runs if r.experiment == "main"]
    assert [(r.run_id, r.label) for r in main] == \
        [(r.run_id, r.label) for r in plain if r.experiment == "main"]
    assert all(r.size is None and "size" not in r.manifest_entry() for r in main)


def test_nonembedding_params_leave_out_embeddings_and_the_head():
    cfg = {"arch": "decoder", "vocab_size": 100, "d_model": 16, "n_heads": 2, "n_layers": 1,
           "pos": "learned", "max_len": 32, "ffn": "gelu"}
    from ablations.grid.budget import count_params
    total = count_params(cfg)
    assert nonembedding_params(cfg) == total - 100 * 16 - 32 * 16 - 16 * 100
    tied = {**cfg, "tie_embeddings": True}
    assert nonembedding_params(tied) == count_params(tied) - 100 * 16 - 32 * 16


def test_a_scale_replaces_the_ladder_and_the_dry_run_lists_every_size(tmp_path, capsys):
    path = write(tmp_path, LADDER)
    smoke = [r for r in grids.expand(grids.load(path), scale="smoke") if r.size]
    assert {r.size for r in smoke} == {"a", "b", "c"}
    assert {r.config["train"]["steps"] for r in smoke} == {3}
    assert {r.config["train"]["warmup"] for r in smoke} == {1}
    assert {r.config["model"]["d_model"] for r in smoke} == {8, 16, 24}
    code = cli(["run", str(path), "--dry-run", "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "tokens_per_param x N / tokens per step" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith("ladder ") and "estimated" not in line]
    assert [r[1] for r in rows] == ["xs", "s", "m"]
    assert all(r[-1][-1] in "smh" for r in rows)              # an estimated time each
    assert "ladder ladder: estimated" in out


BAD = {
    "two sizes": (lambda g: edit(g, "        m: {model.d_model: 64, model.n_layers: 2}\n", ""),
                  "experiments.ladder.ladder.sizes: expected at least 3 named sizes"),
    "no budget": (lambda g: edit(g, "      tokens_per_param: 2\n", ""),
                  "experiments.ladder.ladder.tokens_per_param: required"),
    "steps in a size": (lambda g: edit(g, "xs: {model.d_model: 16}",
                                       "xs: {model.d_model: 16, train.steps: 5}"),
                        "train.steps is derived from tokens_per_param"),
    "a size sets an axis": (lambda g: edit(g, "xs: {model.d_model: 16}",
                                           "xs: {model.d_model: 16, model.ffn: relu}"),
                            "sizes.xs: model.ffn is also an axis"),
    "unknown key": (lambda g: edit(g, "min_steps: 40", "min_step: 40"),
                    "ladder.min_step: unknown key; valid: sizes, tokens_per_param"),
    "bad field": (lambda g: edit(g, "xs: {model.d_model: 16}", "xs: {model.d_modl: 16}"),
                  "did you mean 'd_model'"),
    "bad trend": (lambda g: edit(g, "expect: [holds, grows]", "expect: [holds, grow]"),
                  "checks[0].expect: expected one of grows, shrinks, holds, flips"),
    "bad size": (lambda g: edit(g, "where: {experiment: ladder}}\nplots",
                                "where: {size: xl}}\nplots"),
                 "checks[0].where: {'size': 'xl'} matches no cell"),
    "no ladder": (lambda g: edit(edit(g, "    ladder:\n      sizes:", "    lad:\n      sizes:"),
                                 "  lad:\n", "  x:\n"),
                  "ladder"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_ladder_is_a_one_line_error(tmp_path, capsys, case):
    change, expected = BAD[case]
    code = cli(["run", str(write(tmp_path, change(LADDER))), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_a_ladder_check_on_a_grid_without_one_is_refused(tmp_path, capsys):
    text = edit(LADDER, "    ladder:\n      sizes:\n        xs: {model.d_model: 16}\n"
                "        s: {model.d_model: 32, model.n_layers: 2}\n"
                "        m: {model.d_model: 64, model.n_layers: 2}\n"
                "      tokens_per_param: 2\n      min_steps: 40\n", "")
    text = text.split("smoke:")[0] + "checks:" + LADDER.split("checks:")[1].split("plots:")[0]
    code = cli(["run", str(write(tmp_path, text)), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "checks[0]: a ladder check reads a ladder's sizes" in err


def test_across_makes_a_ladder_check_not_a_compare():
    item = {"claim": "c", "metric": "test_loss", "compare": {"a": 1}, "against": {"a": 2},
            "across": "size", "expect": "holds"}
    assert check_entry("checks[0]", item, CHECKS).name == "ladder"
    del item["across"], item["expect"]
    assert check_entry("checks[0]", item, CHECKS).name == "compare"


# ----------------------------------------------------------------------- the fit
def test_fit_slope_is_ordinary_least_squares_with_a_t_interval():
    rng = np.random.default_rng(0)
    x = np.repeat(np.log10([3e4, 1e5, 3e5, 1e6]), 3)
    y = 0.5 - 0.2 * x + rng.normal(0, 0.05, len(x))
    fit = fit_slope(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit.slope == pytest.approx(slope) and fit.intercept == pytest.approx(intercept)
    resid = y - (intercept + slope * x)
    se = math.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) ** 2).sum())
    assert fit.se == pytest.approx(se) and fit.df == len(x) - 2
    assert fit.ci_high - fit.slope == pytest.approx(t_ppf(0.975, 10) * se)
    assert fit.ci_high < 0 and fit.p < 1e-3
    exact = fit_slope([1, 2, 3], [1, 3, 5])                 # points on a line
    assert exact.slope == pytest.approx(2) and exact.p == 0 and exact.ci_low == exact.slope
    assert math.isnan(fit_slope([1, 2], [1, 2]).slope)      # too few points
    assert math.isnan(fit_slope([1, 1, 1], [1, 2, 3]).slope)  # one x


# ----------------------------------------------------------------------- the outcomes
SIZES = {"xs": 30_000, "s": 100_000, "m": 300_000, "l": 1_000_000}
NOISE = {0: -0.01, 1: 0.0, 2: 0.01, 3: 0.004}


def _runs(effect) -> pd.DataFrame:
    """Per size and seed a baseline loss and the variant's, lower by effect(size)."""
    rows = []
    for size, n in SIZES.items():
        for seed, e in NOISE.items():
            base = 3.0 - 0.3 * math.log10(n) + 0.05 * seed
            rows += [{"size": size, "size_params": n, "seed": seed, "model.ffn": "gelu",
                      "test_loss": base},
                     {"size": size, "size_params": n, "seed": seed, "model.ffn": "swiglu",
                      "test_loss": base - effect(size) + e}]
    return pd.DataFrame(rows)


CHECK = {"claim": "c", "metric": "test_loss", "better": "lower", "across": "size",
         "compare": {"model.ffn": "swiglu"}, "against": {"model.ffn": "gelu"}}
STEP = {"xs": 0, "s": 1, "m": 2, "l": 3}


@pytest.mark.parametrize("effect,trend", [
    (lambda s: 0.02 + 0.03 * STEP[s], "grows"),
    (lambda s: 0.12 - 0.03 * STEP[s], "shrinks"),
    (lambda s: 0.05 + 0.004 * (STEP[s] % 2), "holds"),
    (lambda s: 0.1 - 0.065 * STEP[s], "flips"),
    (lambda s: 0.002 * (-1) ** STEP[s], "inconclusive"),
], ids=["grows", "shrinks", "holds", "flips", "inconclusive"])
def test_each_trend_outcome_on_synthetic_numbers(effect, trend):
    fn = CHECKS["ladder"].fn
    expect = "holds" if trend == "inconclusive" else trend
    verdict, evidence, parts, extra = fn({**CHECK, "expect": expect}, _runs(effect),
                                         "test_loss")
    assert extra["trend"] == trend and evidence.startswith(f"trend: {trend}")
    assert [s["size"] for s in extra["sizes"]] == list(SIZES)
    assert extra["sizes"][0]["effect"] == pytest.approx(effect("xs") - 0.001)   # noise mean
    assert "95% CI" in evidence and "per 10x parameters" in evidence
    assert verdict == ("inconclusive" if trend == "inconclusive" else "supported")
    assert parts and all(0 <= p <= 1 for p, _ in parts)
    if trend in ("grows", "shrinks"):                 # the slope's test is the check's p
        assert len(parts) == 1 and parts[0][0] < 0.05
        assert extra["slope"] == pytest.approx(
            np.polyfit(np.log10(list(SIZES.values())), [effect(s) for s in SIZES], 1)[0],
            abs=0.01)
    if trend == "holds":                              # every size's effect is claimed
        assert len(parts) == len(SIZES) and extra["slope_ci"][0] < 0 < extra["slope_ci"][1]
    if trend == "flips":
        assert len(parts) == 2


@pytest.mark.parametrize("found,expect,verdict", [
    ("grows", ["holds"], "not_supported"), ("holds", ["grows"], "inconclusive"),
    ("flips", ["holds", "grows"], "not_supported"), ("shrinks", ["grows"], "not_supported"),
])
def test_the_verdict_compares_the_trend_with_what_was_expected(found, expect, verdict):
    effect = {"grows": lambda s: 0.02 + 0.03 * STEP[s], "shrinks": lambda s: 0.12 - 0.03 * STEP[s],
              "holds": lambda s: 0.05 + 0.004 * (STEP[s] % 2),
              "flips": lambda s: 0.1 - 0.065 * STEP[s]}[found]
    got = CHECKS["ladder"].fn({**CHECK, "expect": expect}, _runs(effect), "test_loss")
    assert got[0] == verdict and got[3]["trend"] == found


def test_the_report_judges_draws_and_renders_a_ladder(tmp_path):
    spec = {"name": "lad", "claim": "c", "seeds": [0, 1, 2, 3],
            "axes": {"model.ffn": ["gelu", "swiglu"]},
            "ladder": {"sizes": {s: {"model.d_model": 8} for s in SIZES},
                       "tokens_per_param": 2},
            "checks": [{**CHECK, "expect": "grows"}],
            "plots": [{"kind": "ladder_effect", "metric": "test_loss",
                       "compare": CHECK["compare"], "against": CHECK["against"]},
                      {"kind": "ladder_scaling", "metric": "test_loss"}]}
    cells = [{"model.ffn": f, "_size": s} for s in SIZES for f in ("gelu", "swiglu")]
    gdir = make_grid(tmp_path, spec, lambda c, seed: {"test_loss": 3.0 - 0.1 * STEP[c["_size"]]
                     - (0.02 + 0.03 * STEP[c["_size"]]) * (c["model.ffn"] == "swiglu")
                     + NOISE[seed] * (c["model.ffn"] == "swiglu")}, cells=cells)
    grid = table.load(as_ladder(gdir, SIZES))
    assert list(grid.runs.columns[:5]) == ["run_id", "label", "variant", "size", "size_params"]
    v = verdicts.evaluate_grid(grid)[0]
    assert v["kind"] == "ladder" and v["trend"] == "grows" and v["verdict"] == "supported"
    for i, plot in enumerate(spec["plots"]):
        png, csv = plots.render(grid, plot, tmp_path / "out", i)
        assert png.stat().st_size > 0
        drawn = pd.read_csv(csv)
        assert sorted(drawn["params"].unique()) == sorted(SIZES.values())
    assert set(pd.read_csv(tmp_path / "out" / "02_ladder_scaling_test_loss.csv")["series"]) \
        == {"ffn=gelu", "ffn=swiglu"}
    from ablations.report.readme import ladder_section
    text = "\n".join(ladder_section(grid, [v]))
    assert "## Scale ladder" in text and "Trend: **grows** (supported)" in text
    assert "| xs     |" in text and "1,000,000" in text
