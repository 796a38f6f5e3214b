"""The report's verdict family: p values, Holm-Bonferroni within a grid, sanity checks
apart from the verdicts, and replication verdicts beside them (synthetic result
folders, no training)."""
from __future__ import annotations

import json
import math
import shutil

import pytest

from ablations.cli import main as cli
from ablations.report import stats, verdicts
from ablations.report.table import load as load_grid
from report_fixtures import make_grid

# per-seed paired differences (sinusoidal - none) of val_acc: "weak" has p ~ 0.03 alone
STRONG = {0: 0.50, 1: 0.51, 2: 0.49}
WEAK = {0: 0.10, 1: 0.07, 2: 0.13}


def spec(checks) -> dict:
    return {"name": "g", "claim": "c", "task": {"name": "order"},
            "axes": {"model.pos": ["none", "sinusoidal", "learned"]}, "seeds": [0, 1, 2],
            "checks": checks}


def metrics(cell, seed):
    pos = cell["model.pos"]
    base = 0.5 + 0.001 * seed
    acc = {"none": base, "sinusoidal": base + STRONG[seed], "learned": base + WEAK[seed]}
    return {"val_acc": acc[pos], "val_loss": 1 - acc[pos]}


STRONG_CHECK = {"claim": "sinusoidal beats none", "metric": "val_acc", "better": "higher",
                "compare": {"model.pos": "sinusoidal"}, "against": {"model.pos": "none"}}
WEAK_CHECK = {"claim": "learned beats none", "metric": "val_acc", "better": "higher",
              "compare": {"model.pos": "learned"}, "against": {"model.pos": "none"}}
SANITY = {"claim": "none sits at chance", "metric": "val_acc", "sanity": True,
          "select": {"model.pos": "none"}, "above": 0.4, "below": 0.6}


def judged(tmp_path, checks):
    make_grid(tmp_path, spec(checks), metrics)
    return verdicts.evaluate_grid(load_grid(tmp_path / "g"))


def test_holm_adjusts_in_the_given_order_and_counts_a_missing_p_as_one():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.2, 0.001]) == pytest.approx([0.2, 0.002])
    assert stats.holm([math.nan, 0.01]) == pytest.approx([1.0, 0.02])
    assert stats.holm([]) == []


def test_p_beyond_one_and_two_sided_and_zero_spread():
    assert stats.p_beyond(2.0, 1.0, 10, 0.0, sides=1) == pytest.approx(
        stats.p_beyond(2.0, 1.0, 10, 0.0) / 2)
    assert stats.p_beyond(-2.0, 1.0, 10, 0.0, sides=1) > 0.9
    assert stats.p_beyond(3.0, 0.0, 2, 1.0) == 0.0            # a deterministic count
    assert stats.p_beyond(1.0, 0.0, 2, 1.0) == 1.0
    assert math.isnan(stats.p_beyond(1.0, math.nan, 2, 0.0))


def test_a_weak_check_alone_is_supported_but_not_after_holm_over_two(tmp_path):
    (alone,) = judged(tmp_path / "a", [WEAK_CHECK])
    assert alone["verdict"] == "supported" and alone["p"] < 0.05
    assert alone["p_holm"] == pytest.approx(alone["p"])
    # Holm multiplies the smallest of m p values by m, the next by m - 1, ...: a strong
    # check beside it costs the weak one nothing, a second weak one costs both
    strong, weak = judged(tmp_path / "b", [STRONG_CHECK, WEAK_CHECK])
    assert strong["verdict"] == weak["verdict"] == "supported"
    assert weak["p_holm"] == pytest.approx(alone["p"])
    twice = {**WEAK_CHECK, "claim": "learned beats none, again"}
    for v in judged(tmp_path / "c", [WEAK_CHECK, twice]):
        assert v["p"] == pytest.approx(alone["p"])
        assert v["p_holm"] == pytest.approx(2 * alone["p"]) and v["p_holm"] >= 0.05
        assert v["verdict"] == "inconclusive"
        assert "not significant after holm correction over 2 checks" in v["evidence"].lower()
        assert f"p={alone['p']:.2g}, p_holm={2 * alone['p']:.2g}" in v["evidence"]


def test_a_sanity_check_is_judged_but_is_no_member_of_the_family(tmp_path):
    sanity, weak = judged(tmp_path, [SANITY, WEAK_CHECK])
    assert sanity["sanity"] is True and sanity["verdict"] == "supported"
    assert sanity["p"] is not None and sanity["p_holm"] is None
    assert weak["verdict"] == "supported"                 # a family of one: p_holm = p
    assert weak["p_holm"] == pytest.approx(weak["p"])
    assert "sanity" not in weak
    assert verdicts.in_words(sanity).startswith("**Holds.**")


def test_a_threshold_p_is_one_sided_and_a_combined_check_takes_its_largest_p(tmp_path):
    each = {"claim": "every PE beats none", "metric": "val_acc", "better": "higher",
            "compare": {"model.pos": ["sinusoidal", "learned"]},
            "against": {"model.pos": "none"}, "each": True}
    above = {"claim": "sinusoidal above 0.9", "metric": "val_acc",
             "select": {"model.pos": "sinusoidal"}, "above": 0.9}
    combined, strong, weak, bound = judged(tmp_path, [each, STRONG_CHECK, WEAK_CHECK, above])
    assert combined["p"] == pytest.approx(max(strong["p"], weak["p"]))
    s = stats.describe([1.0 + 0.001 * k + STRONG[k] - 0.5 for k in range(3)])
    t = (s.mean - 0.9) / (s.std / math.sqrt(3))
    assert bound["p"] == pytest.approx(1 - stats.t_cdf(t, 2))
    assert all(v["seeds_needed"] for v in (combined, strong, weak, bound))


def test_readme_and_report_show_sanity_apart_and_count_only_verdicts(tmp_path, capsys):
    make_grid(tmp_path, spec([SANITY, STRONG_CHECK]), metrics)
    assert cli(["report", "--results", str(tmp_path), "--no-explainers"]) == 0
    assert "1 supported (+ 1 sanity)" in capsys.readouterr().out
    readme = (tmp_path / "g" / "README.md").read_text()
    verdict_part, guarantees = readme.split("## What the implementation guarantees")
    assert "sinusoidal beats none" in verdict_part.split("## Verdicts")[1]
    assert "none sits at chance" not in verdict_part.split("## Verdicts")[1].lower()
    assert "**Holds.** None sits at chance" in guarantees.split("##")[0]
    # the family, numbered as in the grid's checks, and both p values
    assert "checks 2 of the grid's" in readme and " p_holm |" in readme
    report = (tmp_path / "REPORT.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("|") and "[g]" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:6] == ["1 supported", "1", "not run"]    # verdicts, sanity, replicated
    entries = json.loads((tmp_path / "g" / "verdicts.json").read_text())
    assert [e.get("sanity", False) for e in entries] == [True, False]
    assert entries[1]["replicated"] == {"seeds": None, "corpus": None}


def test_a_replication_that_disagrees_is_shown_beside_the_verdict(tmp_path):
    make_grid(tmp_path, spec([SANITY, STRONG_CHECK, WEAK_CHECK]), metrics)
    # held-out seeds on which learned is no better than none (and sinusoidal still is)
    rep = make_grid(tmp_path / "g" / "replication",
                    {**spec([SANITY, STRONG_CHECK, WEAK_CHECK]), "name": "seeds",
                     "seeds": [10, 11, 12]},
                    lambda c, s: {"val_acc": {"none": 0.5, "sinusoidal": 0.99,
                                              "learned": 0.5}[c["model.pos"]] + 0.01 * (s % 3),
                                  "val_loss": 0.5})
    manifest = json.loads((rep / "manifest.json").read_text())
    manifest.update(name="g", replication={"kind": "seeds", "checks": [1, 2]})
    (rep / "manifest.json").write_text(json.dumps(manifest))
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "-q"]) == 0
    entries = json.loads((tmp_path / "g" / "verdicts.json").read_text())
    assert [e["replicated"]["seeds"] for e in entries] == [None, "supported", "not_supported"]
    assert all(e["replicated"]["corpus"] is None for e in entries)
    readme = (tmp_path / "g" / "README.md").read_text()
    assert "**not supported: does not replicate**" in readme
    assert (rep / "verdicts.json").is_file()
    report = (tmp_path / "REPORT.md").read_text()
    assert "seeds 1 of 2" in report and "does not replicate" in report


def test_the_replicated_tally_counts_decided_verdicts_that_came_out_the_same():
    from ablations.report.replication import tally
    v = lambda verdict, seeds, sanity=False: {"verdict": verdict, "sanity": sanity,  # noqa: E731
                                              "replicated": {"seeds": seeds, "corpus": None}}
    assert tally([v("supported", "supported"), v("not_supported", "inconclusive"),
                  v("inconclusive", "inconclusive"),          # stays undecided: not counted
                  v("supported", "supported", sanity=True),   # a sanity check: counted nowhere
                  v("supported", None)]) == "seeds 1 of 2"    # not replicated yet
    assert tally([v("inconclusive", "supported")]) == "seeds: none decided"
    assert tally([v("supported", None)]) == "not run"


def test_a_replication_that_decides_an_inconclusive_verdict_is_not_a_failure():
    from ablations.report.replication import cell
    v = lambda verdict, seeds: {"verdict": verdict,  # noqa: E731
                                "replicated": {"seeds": seeds, "corpus": None}}
    assert cell(v("inconclusive", "supported"), "seeds") == \
        "supported (the original was inconclusive)"
    assert cell(v("supported", "inconclusive"), "seeds") == \
        "**inconclusive: does not replicate**"
    assert cell(v("inconclusive", "inconclusive"), "seeds") == "inconclusive"
    assert cell(v("supported", None), "corpus") == "not run"


def test_a_replication_of_an_earlier_grid_is_not_judged(tmp_path, capsys):
    """A replication run for other settings (here another task) holds another grid's
    runs: judging the current checks on them would report a verdict as (not)
    replicated on evidence it never had. A check rewritten since is not covered."""
    def replicate(grid_spec, checks):
        rep = make_grid(tmp_path / "g" / "replication",
                        {**grid_spec, "name": "seeds", "seeds": [10, 11, 12]},
                        lambda c, s: metrics(c, s - 10))        # the same numbers again
        manifest = json.loads((rep / "manifest.json").read_text())
        manifest.update(name="g", replication={"kind": "seeds", "checks": checks})
        (rep / "manifest.json").write_text(json.dumps(manifest))

    now = spec([SANITY, STRONG_CHECK, WEAK_CHECK])
    make_grid(tmp_path, now, metrics)
    replicate({**now, "task": {"name": "copy"}}, [1, 2])             # another grid's runs
    # left out, like a damaged file: one line, and the report exits 1
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "-q"]) == 1
    assert "earlier version of the grid (its task differ" in capsys.readouterr().err
    entries = json.loads((tmp_path / "g" / "verdicts.json").read_text())
    assert all(e["replicated"]["seeds"] is None for e in entries)
    # the same runs, but check 2 was rewritten after the replication ran
    shutil.rmtree(tmp_path / "g" / "replication")
    replicate(spec([SANITY, STRONG_CHECK, {**WEAK_CHECK, "claim": "an older claim"}]), [1, 2])
    assert cli(["report", "--results", str(tmp_path), "--no-explainers", "-q"]) == 0
    entries = json.loads((tmp_path / "g" / "verdicts.json").read_text())
    assert [e["replicated"]["seeds"] is None for e in entries] == [True, False, True]
