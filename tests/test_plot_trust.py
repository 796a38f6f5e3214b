"""Plots a sceptic can read: labels that say what an `@` suffix is, intervals that stay
inside a bounded metric's range, reference lines, and effects drawn as effects."""
from __future__ import annotations

import pandas as pd
import pytest

from ablations.report import analysis, plots, stats, verdicts
from ablations.report.kinds import PLOTS, check_entry
from ablations.report.labels import metric_label
from ablations.report.plot_data import bounds_of, interval
from ablations.report.table import load as load_grid
from report_fixtures import make_grid
from transformer.validation import ConfigError


@pytest.mark.parametrize("metric,want", [
    ("val_loss@256", "validation loss (nats/token) at length 256"),
    ("val_loss@causal", "validation loss (evaluation: causal; nats/token)"),
    ("grad_norm@init", "gradient norm (L2) at initialisation"),
    ("attn_entropy_frac@init", "attention entropy (fraction of uniform) at initialisation"),
    ("val_loss@256_beyond",
     "validation loss (nats/token) at length 256, positions past the training length"),
    ("test_loss", "test loss (nats/token)"),
    ("distinct_2@t13", "distinct 2 (evaluation: t13)"),
    ("grad_norm/layer3", "gradient norm (L2), layer3"),
])
def test_an_at_suffix_reads_as_what_it_is(metric, want):
    assert metric_label(metric) == want


# ------------------------------------------------------------ intervals inside bounds
@pytest.mark.parametrize("vals", [[0.99, 1.0, 1.0], [0.0, 0.0, 0.02, 0.0], [0.5, 1.0],
                                  [0.1, 0.9, 0.97, 1.0, 0.2, 0.99, 1.0, 0.0]])
def test_the_bootstrap_interval_stays_inside_the_bounds_and_holds_the_mean(vals):
    lo, hi = stats.bootstrap_ci(vals)
    assert 0.0 <= lo <= sum(vals) / len(vals) <= hi <= 1.0
    t = stats.describe(vals)
    assert t.ci_low < 0.0 or t.ci_high > 1.0 or len(vals) > 4   # where t leaves [0, 1]
    assert stats.bootstrap_ci(vals) == (lo, hi)                 # no randomness


def test_the_wilson_interval_is_inside_0_1_and_not_empty_at_the_ends():
    for frac, n in ((1.0, 100), (0.0, 100), (0.5, 10), (0.97, 2048)):
        lo, hi = stats.wilson_ci(frac, n)
        assert 0.0 <= lo < hi <= 1.0 and lo <= frac <= hi
    assert stats.wilson_ci(1.0, 100)[0] == pytest.approx(0.963, abs=1e-3)   # 100/100


def test_fraction_metrics_get_the_bootstrap_and_losses_keep_t():
    accs = pd.Series([0.95, 1.0, 1.0], index=[0, 1, 2])
    row = interval(accs, "val_acc")
    assert row["interval"] == "bootstrap" and row["ci95_high"] <= 1.0
    assert interval(accs, "val_loss")["interval"] == "t"
    assert interval(accs, "val_loss")["ci95_high"] > 1.0
    assert bounds_of("attn_entropy_frac@init") == (0.0, 1.0) and not bounds_of("attn_entropy")


def acc_spec(**extra) -> dict:
    spec = {"name": "acc", "claim": "c", "task": {"name": "order", "seq_len": 16},
            "axes": {"model.pos": ["none", "rope", "alibi"],
                     "model.d_model": [16, 32]}, "seeds": [0, 1, 2], "plots": []}
    spec.update(extra)
    return spec


# near 1 for rope: a t interval over these three seeds reaches past 1
ACC = {"none": 0.5, "rope": 0.93, "alibi": 0.7}


def acc_metrics(cell, seed):
    acc = min(1.0, ACC[cell["model.pos"]] + 0.035 * seed + 0.01 * (cell["model.d_model"] == 32))
    return {"val_acc": acc, "val_loss": 2.0 - acc + 0.003 * seed}


@pytest.fixture
def acc_grid(tmp_path):
    make_grid(tmp_path, acc_spec(), acc_metrics)
    return load_grid(tmp_path / "acc")


@pytest.mark.parametrize("plot", [
    {"kind": "bar", "metric": "val_acc", "x": "model.pos"},
    {"kind": "line", "metric": "val_acc", "x": "model.d_model", "hue": "model.pos"},
    {"kind": "heatmap", "metric": "val_acc", "x": "model.pos", "y": "model.d_model"}])
def test_plotted_accuracy_intervals_stay_in_0_1(acc_grid, tmp_path, plot):
    png, csv = plots.render(acc_grid, plot, tmp_path)
    data = pd.read_csv(csv)
    assert (data["ci95_low"] >= 0).all() and (data["ci95_high"] <= 1).all()
    assert set(data["interval"]) == {"bootstrap"}


def test_a_reference_line_is_drawn_and_validated(acc_grid, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.append(fig))
    plot = {"kind": "bar", "metric": "val_acc", "x": "model.pos",
            "reference": {"value": 0.5, "label": "chance"}}
    plots.render(acc_grid, plot, tmp_path)
    ax = drawn[0].axes[0]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None")]
    assert [tuple(ln.get_ydata()) for ln in dashed] == [(0.5, 0.5)]
    assert "chance: 0.5" in [t.get_text() for t in ax.get_legend().get_texts()]
    check_entry("plots[0]", {**plot, "reference": [{"value": 0.5, "label": "chance"},
                                                   {"value": 3.3}]}, PLOTS)
    for bad in ({"value": "half"}, {"label": "chance"}, 0.5, [{"value": 1, "colour": "r"}]):
        with pytest.raises(ConfigError, match=r"plots\[0\]\.reference"):
            check_entry("plots[0]", {**plot, "reference": bad}, PLOTS)


# ------------------------------------------------------------ effects as effects
def test_the_effect_plot_is_the_checks_paired_difference(acc_grid, tmp_path):
    plot = {"kind": "effect", "metric": "val_loss", "x": "model.pos",
            "baseline": {"model.pos": "none"}, "hue": "model.d_model"}
    png, csv = plots.render(acc_grid, plot, tmp_path)
    data = pd.read_csv(csv)
    assert len(data) == 4 and set(data["model.pos"]) == {"rope", "alibi"}   # none: baseline
    runs = acc_grid.runs
    for _, row in data.iterrows():
        cell = runs[runs["model.d_model"] == row["model.d_model"]]
        d = stats.difference(analysis.per_seed(cell[cell["model.pos"] == row["model.pos"]],
                                               "val_loss"),
                             analysis.per_seed(cell[cell["model.pos"] == "none"], "val_loss"))
        assert d.paired and row["test"] == "paired"
        assert (row["diff"], row["ci95_low"], row["ci95_high"]) == pytest.approx(
            (d.diff, d.ci_low, d.ci_high))
    v = verdicts.evaluate({"claim": "c", "metric": "val_loss", "better": "lower",
                           "compare": {"model.pos": "rope"}, "against": {"model.pos": "none"},
                           "where": {"model.d_model": 16}}, acc_grid)
    one = data[(data["model.pos"] == "rope") & (data["model.d_model"] == 16)].iloc[0]
    assert f"{one['diff']:+.4g}" in v["evidence"]
    png, csv = plots.render(acc_grid, {"kind": "effect", "metric": "val_acc",
                                       "compare": {"model.pos": "rope"},
                                       "against": {"model.pos": "alibi"}}, tmp_path, 1)
    assert len(pd.read_csv(csv)) == 1 and png.read_bytes()[:4] == b"\x89PNG"


def test_an_effect_plot_needs_a_side_to_compare_with():
    with pytest.raises(ConfigError, match="against: SEL or baseline: SEL"):
        check_entry("plots[0]", {"kind": "effect", "metric": "val_loss", "x": "a"}, PLOTS)


def test_the_shipped_unigram_references_are_the_training_texts_entropy():
    """The grids give the unigram loss as a number; it must be the one the corpus has."""
    import math
    from pathlib import Path

    import yaml

    from ablations.tasks.corpus import load_corpus
    corpus = load_corpus("python-docs", "char", 0)
    counts = {}
    for t in corpus.tokens[:corpus.n_train].tolist():
        counts[t] = counts.get(t, 0) + 1
    n = sum(counts.values())
    entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    found = 0
    for path in sorted((Path(__file__).parents[1] / "ablations" / "grids").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        for plot in spec.get("plots") or []:
            refs = plot.get("reference") or []
            for ref in refs if isinstance(refs, list) else [refs]:
                if "unigram" in str(ref.get("label")):
                    assert ref["value"] == pytest.approx(entropy, abs=1e-4), path.name
                    found += 1
    assert found >= 5
