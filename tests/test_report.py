"""`ablate report`: statistics, plots, verdicts and the end-to-end command, on small
synthetic result folders (no training)."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ablations.report import analysis, plot_lines, plots, stats, verdicts
from ablations.report.table import load as load_grid, load_curves, usable
from ablations.cli import main as cli
from report_fixtures import make_grid

PNG = b"\x89PNG\r\n\x1a\n"

# val_acc per pos (seed adds 0.01 * (seed - 1)); the runner stores NaN-free metrics here.
ACC = {"none": 0.50, "sinusoidal": 0.95, "learned": 0.93, "alibi": 0.50}


def pe_spec(**extra) -> dict:
    spec = {"name": "pe", "claim": "Attention alone is order-blind.",
            "published": "Vaswani Table 3 (E): learned 4.92 = sinusoidal 4.92.",
            "task": {"name": "order", "seq_len": 16},
            "axes": {"model.pos": ["none", "sinusoidal", "learned", "alibi"]},
            "seeds": [0, 1, 2], "baseline": {"model.pos": "sinusoidal"},
            "checks": [{"claim": "sinusoidal beats none", "metric": "val_acc",
                        "better": "higher", "compare": {"model.pos": "sinusoidal"},
                        "against": {"model.pos": "none"}}],
            "plots": [{"kind": "bar", "metric": "val_acc", "x": "model.pos"},
                      {"kind": "curve", "metric": "val_loss", "hue": "model.pos"},
                      {"kind": "line", "metric": "val_acc", "x": "model.d_model",
                       "hue": "model.pos"},
                      {"kind": "heatmap", "metric": "val_loss", "x": "model.pos",
                       "y": "model.d_model"},
                      {"kind": "extrapolation", "metric": "val_loss", "hue": "model.pos"}]}
    spec.update(extra)
    return spec


def pe_metrics(cell, seed):
    pos = cell["model.pos"]
    acc = ACC[pos] + 0.01 * (seed - 1)
    grow = 1.0 if pos == "alibi" else 2.0
    return {"val_acc": acc, "val_loss": 1 - acc, "val_loss@32": (1 - acc) * grow,
            "val_loss@64": (1 - acc) * grow * grow, "train_loss": 1 - acc}


def pe_config(cell, seed):      # d_model is not an axis: the report reads it from config
    return {"model": {"pos": cell["model.pos"], "d_model": 64 if seed < 2 else 128},
            "train": {"seed": seed}, "task": {"name": "order", "seq_len": 16}}


@pytest.fixture
def pe_grid(tmp_path):
    make_grid(tmp_path, pe_spec(), pe_metrics, config=pe_config, unfinished=1,
              status=lambda c, s: "diverged" if (c["model.pos"], s) == ("learned", 2) else "ok")
    return load_grid(tmp_path / "pe")


# -------------------------------------------------------------------- statistics
@pytest.mark.parametrize("p, df, want", [(0.975, 1, 12.706205), (0.975, 2, 4.302653),
                                         (0.975, 10, 2.228139), (0.975, 30, 2.042272),
                                         (0.025, 5, -2.570582), (0.975, 2.5972978, 3.480644)])
def test_t_quantiles_match_tables(p, df, want):
    assert stats.t_ppf(p, df) == pytest.approx(want, abs=1e-5)


def test_describe_against_hand_computed_values():
    s = stats.describe([1.0, 2.0, 4.0, float("nan")])        # NaN is dropped
    assert s.n == 3 and s.mean == pytest.approx(7 / 3)
    assert s.std == pytest.approx(math.sqrt(7 / 3))              # sum sq dev 14/3, ddof 1
    half = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((7 / 3 - half, 7 / 3 + half), abs=1e-5)
    one = stats.describe([5.0])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.ci_low)


def test_difference_pairs_by_seed_else_welch():
    a = pd.Series([1.0, 2.0, 4.0], index=[0, 1, 2])
    b = pd.Series([0.5, 1.7, 2.0], index=[0, 1, 2])
    d = stats.difference(a, b)                   # per-seed diffs 0.5, 0.3, 2.0
    sd = math.sqrt(((0.5 - 14 / 15) ** 2 + (0.3 - 14 / 15) ** 2 + (2 - 14 / 15) ** 2) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert d.paired and d.diff == pytest.approx(14 / 15)
    assert (d.ci_low, d.ci_high) == pytest.approx((14 / 15 - half, 14 / 15 + half), abs=1e-5)
    assert d.p == pytest.approx(0.2240164, abs=1e-6)
    w = stats.difference(a, pd.Series([0.5, 1.7, 2.0, 1.0], index=[0, 1, 2, 3]))
    assert not w.paired and w.df == pytest.approx(2.5972978, abs=1e-6)
    assert w.diff == pytest.approx(7 / 3 - 1.3) and w.p == pytest.approx(0.3650678, abs=1e-6)


# -------------------------------------------------------------------- loading
def test_load_grid_builds_one_row_per_finished_run(pe_grid, tmp_path):
    runs = pe_grid.runs
    assert pe_grid.n_listed == 12 and pe_grid.n_unfinished == 1 and len(runs) == 11
    for col in ("run_id", "label", "bundle", "seed", "status", "reason", "model.pos",
                "val_acc", "val_loss@64", "params", "steps", "tokens_per_s", "wall_s",
                "diverged", "model.d_model"):
        assert col in runs.columns, col
    assert runs["diverged"].sum() == 1
    assert set(runs["model.d_model"]) == {64, 128}            # read from result.json config
    curve = load_curves(pe_grid, "val_loss")
    assert not curve.duplicated(["run_id", "step"]).any()      # resumed duplicate dropped
    agg = analysis.aggregate(pe_grid, ["val_acc"]).set_index("variant")
    assert agg.loc["pos=none", "n"] == 2 and agg.loc["pos=sinusoidal", "n"] == 3
    assert agg.loc["pos=sinusoidal", "mean"] == pytest.approx(0.95)
    assert agg.loc["pos=sinusoidal", "std"] == pytest.approx(0.01)
    comp = analysis.baseline_comparisons(pe_grid, ["val_acc"]).set_index("variant")
    assert comp.loc["pos=learned", "test"] == "paired"
    assert comp.loc["pos=learned", "diff"] == pytest.approx(-0.02)
    assert comp.loc["pos=none", "test"] == "Welch"             # seed 0 unfinished


def test_runs_that_ignore_an_axis(tmp_path):
    spec = {"name": "rnn", "axes": {"model.arch": ["lstm", "decoder"],
                                    "model.pos": ["rope", "none"]},
            "seeds": [0, 1, 2], "baseline": {"model.arch": "lstm"}}
    cells = [{"model.arch": "lstm", "model.pos": None}] + \
        [{"model.arch": "decoder", "model.pos": p} for p in ("rope", "none")]
    make_grid(tmp_path, spec, lambda c, s: {"val_acc": 0.5 if c["model.arch"] == "lstm"
                                            else 0.9 + 0.01 * s}, cells=cells)
    grid = load_grid(tmp_path / "rnn")
    assert analysis.select(grid.runs, {"model.pos": "rope"}).sum() == 3   # lstm not matched
    assert analysis.select(grid.runs, {"model.pos": None}).sum() == 3
    comp = analysis.baseline_comparisons(grid, ["val_acc"])   # the shared lstm is the baseline
    assert list(comp["variant"]) == ["arch=decoder, pos=rope", "arch=decoder, pos=none"]
    assert comp["diff"].tolist() == pytest.approx([0.41, 0.41])
    table, fig = plot_lines.line(grid, usable(grid.runs),
                             {"kind": "line", "metric": "val_acc", "x": "model.pos"})
    assert "(ignores axis)" in table["model.pos"].tolist()    # drawn as a reference line


# -------------------------------------------------------------------- verdicts
def verdict(grid, **check):
    return verdicts.evaluate({"claim": "c", "metric": "val_acc", **check}, grid)


def test_compare_supported_not_supported_inconclusive(pe_grid):
    sup = verdict(pe_grid, better="higher", compare={"model.pos": "sinusoidal"},
                  against={"model.pos": "none"})
    assert sup["verdict"] == "supported"
    assert "0.95 ± 0.01 (n=3)" in sup["evidence"] and "95% CI" in sup["evidence"]
    wrong = verdict(pe_grid, better="lower", compare={"model.pos": "sinusoidal"},
                    against={"model.pos": "none"})
    assert wrong["verdict"] == "not_supported"
    noise = verdict(pe_grid, better="higher", compare={"model.pos": "alibi"},
                    against={"model.pos": "none"})               # 0.50 vs 0.505: seed noise
    assert noise["verdict"] == "inconclusive"
    small = verdict(pe_grid, better="higher", compare={"model.pos": "sinusoidal"},
                    against={"model.pos": "learned"}, min_effect=0.05)  # +0.02 every seed
    assert small["verdict"] == "not_supported"
    ok = verdict(pe_grid, better="higher", compare={"model.pos": "sinusoidal"},
                 against={"model.pos": "learned"}, min_effect=0.01)
    assert ok["verdict"] == "supported" and "paired by seed" in ok["evidence"]


def test_each_best_threshold_and_missing(pe_grid):
    each = verdict(pe_grid, better="higher", each=True, against={"model.pos": "none"},
                   compare={"model.pos": ["sinusoidal", "learned", "alibi"]})
    assert each["verdict"] == "inconclusive" and each["evidence"].count("->") == 3
    pooled = verdict(pe_grid, better="higher", against={"model.pos": "none"},
                     compare={"model.pos": ["sinusoidal", "learned"]})
    assert pooled["verdict"] == "supported"
    best = verdicts.evaluate({"claim": "alibi extrapolates best", "metric": "val_loss@64",
                              "better": "lower", "best": {"model.pos": "alibi"}}, pe_grid)
    assert best["verdict"] == "not_supported"          # sinusoidal/learned have lower loss
    below = verdict(pe_grid, select={"model.pos": "none"}, below=0.6)
    above = verdict(pe_grid, select={"model.pos": "none"}, above=0.6)
    near = verdict(pe_grid, select={"model.pos": "none"}, below=0.51)
    assert (below["verdict"], above["verdict"], near["verdict"]) == \
        ("supported", "not_supported", "inconclusive")
    missing = verdicts.evaluate({"claim": "c", "metric": "bleu", "better": "higher",
                                 "compare": {"model.pos": "rope"},
                                 "against": {"model.pos": "none"}}, pe_grid)
    # a check the stored runs cannot answer is an error of the grid, never "inconclusive"
    assert missing["verdict"] == "error" and "cannot evaluate" in missing["evidence"]
    diverge = verdicts.evaluate({"claim": "learned diverges more", "metric": "diverged",
                                 "better": "higher", "compare": {"model.pos": "learned"},
                                 "against": {"model.pos": "sinusoidal"}}, pe_grid)
    assert diverge["verdict"] == "inconclusive"        # 1 of 3 seeds: within noise


def test_metrics_csv_fallback_and_text_metrics(tmp_path):
    def metrics(cell, seed):               # no train_loss in result.json; learned PE fails at 64
        m = {k: v for k, v in pe_metrics(cell, seed).items() if k != "train_loss"}
        if cell["model.pos"] == "learned":
            m.pop("val_loss@64")
            m["val_error@64"] = "learned PE past its table (64 > 32)"
        return m
    check = {"claim": "sinusoidal trains lower than none", "metric": "train_loss",
             "better": "lower", "compare": {"model.pos": "sinusoidal"},
             "against": {"model.pos": "none"}}
    make_grid(tmp_path, pe_spec(checks=[check]), metrics)
    grid = load_grid(tmp_path / "pe")
    assert "val_error@64" not in grid.metrics and "train_loss" in grid.metrics
    assert grid.runs["val_error@64"].notna().sum() == 3
    v = verdicts.evaluate_grid(grid)[0]
    assert v["verdict"] == "supported" and "train_loss" in v["evidence"]
    _, csv = plots.render(grid, grid.spec["plots"][4], tmp_path, 4)
    ext = pd.read_csv(csv).set_index(["model.pos", "length"])
    assert ext.loc[("learned", 64), "n"] == 0 and ext.loc[("learned", 32), "n"] == 3


def test_single_seed_is_inconclusive(tmp_path):
    make_grid(tmp_path, pe_spec(seeds=[0]), pe_metrics)
    grid = load_grid(tmp_path / "pe")
    v = verdict(grid, better="higher", compare={"model.pos": "sinusoidal"},
                against={"model.pos": "none"})
    assert v["verdict"] == "inconclusive"


# -------------------------------------------------------------------- plots
@pytest.mark.parametrize("index", range(5))
def test_each_plot_kind_renders_png_and_csv(pe_grid, tmp_path, index):
    plot = pe_grid.spec["plots"][index]
    png, csv = plots.render(pe_grid, plot, tmp_path, index)
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    data = pd.read_csv(csv)
    assert len(data) > 0 and "mean" in data.columns
    if plot["kind"] == "bar":
        assert len(data) == 4
        assert data.set_index("model.pos").loc["none", "n"] == 2
    if plot["kind"] == "extrapolation":                  # 16 (training length), 32, 64
        assert sorted(data["length"].unique()) == [16, 32, 64]
    if plot["kind"] == "curve":
        assert set(data["step"]) == {0, 50, 100}


def test_impossible_plot_is_skipped_not_faked(pe_grid, tmp_path):
    with pytest.raises(plots.SkipPlot):
        plots.render(pe_grid, {"kind": "curve", "metric": "grad_norm"}, tmp_path)
    with pytest.raises(plots.SkipPlot):
        plots.render(pe_grid, {"kind": "heatmap", "metric": "val_acc", "x": "model.pos"},
                     tmp_path)
    assert not list(tmp_path.glob("*.png"))


# -------------------------------------------------------------------- end to end
def test_ablate_report_end_to_end(tmp_path, capsys):
    spec = pe_spec()
    spec["checks"].append({"claim": "no PE sits at chance", "metric": "val_acc",
                           "select": {"model.pos": "none"}, "below": 0.6})
    make_grid(tmp_path, spec, pe_metrics, config=pe_config)
    assert cli(["report", "--results", str(tmp_path), "--no-explainers"]) == 0
    gdir = tmp_path / "pe"
    for name in ("summary.csv", "aggregate.csv", "comparisons.csv", "verdicts.json",
                 "README.md"):
        assert (gdir / name).is_file(), name
    assert len(pd.read_csv(gdir / "summary.csv")) == 12
    vlist = json.loads((gdir / "verdicts.json").read_text())
    assert [v["verdict"] for v in vlist] == ["supported", "supported"]
    assert all(set(v) >= {"claim", "verdict", "evidence"} for v in vlist)
    readme = (gdir / "README.md").read_text()
    assert "Attention alone is order-blind" in readme and "Vaswani Table 3" in readme
    assert "| pos=sinusoidal" in readme and "**Supported.**" in readme
    pngs = sorted(gdir.glob("*.png"))
    assert len(pngs) == 5 and all(f"]({p.name})" in readme for p in pngs)
    report = (tmp_path / "REPORT.md").read_text()
    assert "[pe](pe/README.md)" in report and "pe/01_bar_val_acc_by_pos.png" in report
    for p in pngs:                                  # plots come back without retraining
        p.unlink()
    before = (gdir / "verdicts.json").read_text()
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "pe"]) == 0
    assert sorted(gdir.glob("*.png")) == pngs
    assert (gdir / "verdicts.json").read_text() == before
    # readable by others, like a CSV: PNGs came out 0600 from a temp file once
    written = [p for p in gdir.glob("*") if p.is_file()] + [tmp_path / "REPORT.md"]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == \
        {p.name: oct(0o644) for p in written}


def test_unknown_grid_is_a_one_line_error(tmp_path, capsys):
    make_grid(tmp_path, pe_spec(), pe_metrics)
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown grid 'nope'" in err and "pe" in err
    assert cli(["report", "--results", str(tmp_path / "missing")]) == 2


# -------------------------------------------------------------------- explainers
def test_explainers_from_a_saved_lm_and_without_one(tmp_path):
    torch = pytest.importorskip("torch")
    from ablations.report import explainers
    from ablations.tasks.corpus import load_corpus
    from transformer import ModelConfig, build_model

    notes = explainers.make_all(tmp_path)               # nothing trained: two figures
    out = tmp_path / "explainers"
    assert sorted(p.name for p in out.glob("*.png")) == ["attention_entropy_init.png",
                                                         "sinusoidal_encoding.png"]
    assert any("skipped" in n for n in notes)
    ent = pd.read_csv(out / "attention_entropy_init.csv")
    sim = ent[ent["source"] == "unit-variance q, k"].set_index(["scale", "d_k"])
    assert sim.loc[("sqrt", 256), "entropy_fraction"] > 0.8      # ~0.89 (docs/catalogue.md)
    assert sim.loc[("none", 256), "entropy_fraction"] < 0.15     # ~0.06

    vocab = load_corpus("python-docs", "char", 0).vocab_size
    cfg = {"model": {"arch": "decoder", "vocab_size": vocab, "d_model": 32, "n_heads": 2,
                     "n_layers": 1, "max_len": 64, "pos": "rope"},
           "train": {"seed": 0},
           "task": {"name": "lm", "source": "python-docs", "tokenizer": "char", "seq_len": 64}}
    model = build_model(ModelConfig(**cfg["model"]))
    spec = {"name": "lm", "plots": []}
    make_grid(tmp_path, spec, lambda c, s: {"val_loss": 2.0}, config=lambda c, s: cfg)
    rdir = next((tmp_path / "lm" / "runs").iterdir())
    torch.save({"config": cfg, "state_dict": model.state_dict()}, rdir / "model.pt")
    assert cli(["report", "--results", str(tmp_path)]) == 0     # explainers included
    for name in ("attention_heads_layer0", "attention_from_it", "sampling"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG, name
        assert len(pd.read_csv(out / f"{name}.csv")) > 0
    heads = pd.read_csv(out / "attention_heads_layer0.csv")
    rows = heads.groupby(["head", "query_pos"])["weight"].sum()
    assert rows.to_numpy() == pytest.approx(1.0, abs=1e-3)   # rows sum to 1 (5-decimal figures)
    samp = pd.read_csv(out / "sampling.csv")
    assert (samp["p_T0.5"].iloc[0] > samp["p_T1.0"].iloc[0] > samp["p_T2.0"].iloc[0])
    assert (samp["p_top5"] > 0).sum() == 5
    assert "explainers/attention_from_it.png" in (tmp_path / "REPORT.md").read_text()


def test_damaged_files_are_named_and_the_rest_is_reported(tmp_path, capsys):
    """A corrupt result.json or metrics.csv leaves that run out; a corrupt manifest leaves
    its grid out; each is one line on stderr, the rest is reported, and the exit code
    is 1."""
    gdir = make_grid(tmp_path, pe_spec(), pe_metrics, config=pe_config)
    runs = sorted((gdir / "runs").iterdir())
    (runs[0] / "result.json").write_text('{"status": "ok", "metr')          # truncated
    (runs[1] / "metrics.csv").write_text("\x00\x01garbage\nnot,a,csv,file\n")
    (runs[2] / "metrics.csv").unlink()                                      # missing: fine
    other = make_grid(tmp_path, {**pe_spec(), "name": "other"}, pe_metrics)
    (other / "manifest.json").write_text("[1, 2")
    code = cli(["report", "--results", str(tmp_path), "--no-explainers", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 3, err
    assert any(str(runs[0] / "result.json") in line for line in err)
    assert any(str(runs[1] / "metrics.csv") in line for line in err)
    assert any(str(other / "manifest.json") in line for line in err)
    assert all(line.startswith("ablate report: skipped ") for line in err)
    summary = pd.read_csv(gdir / "summary.csv")
    assert len(summary) == 11 and runs[0].name not in set(summary["run_id"])
    assert (gdir / "README.md").is_file() and (tmp_path / "REPORT.md").is_file()
    assert "(other/README.md)" not in (tmp_path / "REPORT.md").read_text()


def test_a_result_that_is_not_an_object_is_damaged(tmp_path):
    gdir = make_grid(tmp_path, pe_spec(), pe_metrics, config=pe_config)
    run = sorted((gdir / "runs").iterdir())[0]
    (run / "result.json").write_text("[]")
    grid = load_grid(gdir)
    assert len(grid.runs) == 11 and len(grid.problems) == 1
    assert "expected a JSON object" in grid.problems[0]


def test_power_estimate_says_how_many_seeds_would_resolve_the_gap():
    # effect = spread: the normal approximation says (1.96 + 0.84)^2 = 7.8 seeds; the t
    # quantiles at small n ask for a few more
    assert stats.seeds_needed(1.0, 1.0) == 10
    assert stats.seeds_needed(1.0, 0.1) == 2
    assert stats.seeds_needed(0.0, 1.0) is None
    assert stats.seeds_needed(0.001, 1.0) is None            # past 1,000 seeds
    a = pd.Series([0.50, 0.60, 0.40], index=[0, 1, 2])
    b = pd.Series([0.45, 0.62, 0.30], index=[0, 1, 2])
    d = stats.difference(a, b)
    assert verdicts.judge(d, "higher") == "inconclusive"
    assert d.spread == pytest.approx((a - b).std(), rel=1e-6)
    note = verdicts.power_note(d)
    assert "seeds per side (80% power); there are 3" in note


def test_a_no_worse_than_claim_fails_only_when_clearly_worse_than_it_allows():
    """min_effect < 0 claims "at most |min_effect| worse": a CI below 0 that still reaches
    into the allowance does not refute it; one entirely below min_effect does."""
    a = pd.Series([0.90, 0.86, 0.94], index=[0, 1, 2])
    slightly = stats.difference(a, a + pd.Series([0.04, 0.03, 0.02], index=[0, 1, 2]))
    assert slightly.ci_high < 0 and slightly.ci_high > -0.02
    assert verdicts.judge(slightly, "higher", -0.02) == "inconclusive"
    assert verdicts.judge(slightly, "higher") == "not_supported"
    clearly = stats.difference(a, a + pd.Series([0.12, 0.10, 0.11], index=[0, 1, 2]))
    assert verdicts.judge(clearly, "higher", -0.02) == "not_supported"
    assert verdicts.judge(stats.difference(a, a + 0.01), "higher", -0.02) == "supported"


def test_inconclusive_verdicts_carry_the_power_estimate(tmp_path):
    spec = pe_spec(checks=[{"claim": "learned beats sinusoidal", "metric": "val_acc",
                            "compare": {"model.pos": "learned"},
                            "against": {"model.pos": "sinusoidal"}}])
    acc = {"learned": [0.90, 0.95, 1.00], "sinusoidal": [0.92, 0.90, 0.97]}
    noisy = lambda c, s: {**pe_metrics(c, s),
                          "val_acc": acc.get(c["model.pos"], [0.5] * 3)[s]}
    make_grid(tmp_path, spec, noisy, config=pe_config)
    (v,) = verdicts.evaluate_grid(load_grid(tmp_path / "pe"))
    assert v["verdict"] == "inconclusive" and "[power:" in v["evidence"], v


def test_report_index_follows_the_story_and_places_explainers_by_claim(tmp_path):
    """Grids in `chapter:` order (unnumbered last); an explainer beside its claim."""
    for name, chapter in (("zeta", 3), ("alpha", None), ("mid", 5)):
        spec = {**pe_spec(), "name": name, "question": f"What about {name}?"}
        if chapter:
            spec["chapter"] = chapter
        make_grid(tmp_path, spec, pe_metrics)
    (tmp_path / "explainers").mkdir()
    for f in ("sinusoidal_encoding.png", "attention_entropy_init.png", "sampling.png"):
        (tmp_path / "explainers" / f).write_bytes(b"png")
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "-q"]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    at = {k: report.index(k) for k in ("## 3. zeta: What about zeta?", "## 5. mid",
                                       "## alpha", "explainers/attention_entropy_init.png",
                                       "explainers/sinusoidal_encoding.png",
                                       "## Explainer figures", "explainers/sampling.png")}
    assert at["## 3. zeta: What about zeta?"] < at["explainers/attention_entropy_init.png"] \
        < at["## 5. mid"] < at["explainers/sinusoidal_encoding.png"] < at["## alpha"] \
        < at["## Explainer figures"] < at["explainers/sampling.png"]


def test_setup_lists_the_axes_of_each_experiment():
    from ablations.report.readme import setup_text
    text = setup_text({"task": {"name": "recall"}, "experiments": {
        "distance": {"axes": {"task.k": [4, 16], "model.arch": ["lstm", "decoder"]}},
        "mqar": {"task": {"name": "mqar"}, "axes": {"model.arch": ["gru"]}}}})
    assert "**Axes:** —" not in text
    assert '- **Axes per experiment:**\n  - distance: `task.k: [4, 16]`; `model.arch: ["lstm", ' \
        '"decoder"]`\n  - mqar: `model.arch: ["gru"]`' in text
    assert "- **Axes:** `model.pos: [\"none\"]`" in setup_text({"axes": {"model.pos": ["none"]}})


def test_a_check_that_cannot_be_evaluated_makes_the_report_exit_1(tmp_path, capsys):
    from ablations.cli import main
    make_grid(tmp_path, pe_spec(checks=[{"claim": "c", "metric": "bleu", "better": "higher",
                                         "compare": {"model.pos": "rope"},
                                         "against": {"model.pos": "none"}}]),
              pe_metrics, config=pe_config)
    assert main(["report", "--results", str(tmp_path), "--no-explainers", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "check 1" in err and "metric 'bleu'" in err, err


def test_the_report_loads_the_plugins_a_grid_ran_with(tmp_path, capsys):
    """A grid trained with a plugin variant: the report imports the plugin its manifest
    records (looked up beside the grid file); one that is gone is one line, not the end."""
    import json

    from ablations.cli import main
    from transformer.registry import POSITIONAL
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "report_plugin_pe.py").write_text(
        "from transformer.positional import PositionalEncoding\n"
        "from transformer.registry import POSITIONAL\n"
        "@POSITIONAL.register('report_plugin_pe')\n"
        "class P(PositionalEncoding):\n    pass\n")
    results = tmp_path / "results"
    for name, plugin in (("good", "report_plugin_pe"), ("gone", "no_such_plugin_xyz")):
        gdir = make_grid(results, {**pe_spec(), "name": name}, pe_metrics, config=pe_config)
        manifest = json.loads((gdir / "manifest.json").read_text())
        manifest.update(grid_file=str(tmp_path / "grids" / f"{name}.yaml"),
                        applied={"plugins": [plugin]})
        (gdir / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", "--results", str(results), "--no-explainers", "-q"]) == 1
    err = capsys.readouterr().err
    assert "report_plugin_pe" in POSITIONAL
    assert err.count("\n") == 1 and "gone" in err and "no_such_plugin_xyz" in err, err
    assert (results / "REPORT.md").is_file() and (results / "good" / "README.md").is_file()
