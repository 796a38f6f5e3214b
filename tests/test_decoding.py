"""Decoding evaluations (ablations/training/decoding.py): diversity and likelihood of
samples, the KV cache timed against recomputation; the `trend` check and the `frontier`
plot that judge and draw them."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from ablations.posthoc.spec import DECODE_METRICS, GENERATE_METRICS

from ablations.report import command, table, verdicts
from ablations.posthoc.decoding import (across, decode_speed, distinct, repetition,
                                        sample_metrics)
from transformer import ModelConfig, build_model

from report_fixtures import make_grid


def test_distinct_and_repetition_count_ngrams():
    assert distinct([[1, 2, 1, 2]], 1) == 0.5
    assert distinct([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)       # (1,2) (2,1) (1,2)
    assert distinct([[1, 2], [1, 2]], 2) == 0.5                       # across samples
    assert repetition([1, 2, 3, 4, 5, 6, 7]) == 0.0
    assert repetition([1, 2, 1, 2, 1, 2, 1, 2], n=2) == pytest.approx(5 / 7)
    assert math.isnan(repetition([1, 2]))


def net():
    torch.manual_seed(0)
    return build_model(ModelConfig(vocab_size=13, d_model=16, n_heads=2, n_layers=1,
                                   pos="rope"))


def test_sample_metrics_loglik_is_the_models_own_log_probability():
    model, prompt = net(), torch.tensor([[1, 2, 3]])
    out = model.generate(prompt, 5, temperature=0)
    m = sample_metrics(model, prompt, [out])
    logp = model.full_logits(out[:, :-1], None).log_softmax(-1)[0, 2:]
    want = logp.gather(-1, out[0, 3:, None]).mean().item()
    assert m["loglik"] == pytest.approx(want, abs=1e-5)
    assert "loglik_scorer" not in m                      # no judge given


def test_within_and_across_diversity_are_apart():
    same = [[1, 2, 3, 4, 5]] * 3                          # one varied text, three times
    assert across(same) == 0.0
    assert across([[1, 2, 3], [4, 5, 6]]) == 1.0         # no shared bigram
    assert across([[1, 2, 3], [1, 2, 4]]) == pytest.approx(1 - 1 / 3)   # {12} of {12,23,24}
    model, prompt = net(), torch.tensor([[1, 2, 3]])
    loop = torch.tensor([[1, 2, 3, 5, 6, 5, 6, 5, 6]])
    m = sample_metrics(model, prompt, [loop, loop])
    assert m["distinct_2_across"] == 0.0                  # two copies: nothing differs
    assert m["distinct_2_within"] == pytest.approx(2 / 5)  # 56 65 56 65 56: 2 unique of 5


def test_a_judge_scores_the_samples_apart_from_the_writer():
    model, prompt = net(), torch.tensor([[1, 2, 3]])
    torch.manual_seed(1)
    judge = build_model(ModelConfig(vocab_size=13, d_model=16, n_heads=2, n_layers=2))
    outs = [model.generate(prompt, 6, temperature=1.0) for _ in range(3)]
    m = sample_metrics(model, prompt, outs, judge)
    assert set(m) == set(GENERATE_METRICS)             # the names grids may use, declared
    own = sample_metrics(judge, prompt, outs)["loglik"]
    assert m["loglik_scorer"] == pytest.approx(own) and m["loglik_scorer"] != m["loglik"]


def test_decode_speed_reports_each_length_and_identical_greedy_tokens():
    m = decode_speed(net(), torch.tensor([[1, 2, 3]]), [4, 12])
    assert {k.split("@")[0] for k in m} == set(DECODE_METRICS)
    for n in (4, 12):
        assert m[f"tps_cache@{n}"] > 0 and m[f"tps_nocache@{n}"] > 0
        assert m[f"speedup@{n}"] == pytest.approx(m[f"tps_cache@{n}"] / m[f"tps_nocache@{n}"])
        assert m[f"same_tokens@{n}"] == 1.0
    assert m["same_tokens"] == 1.0


SPEC = {"name": "dec", "claim": "hotter is more diverse", "seeds": [0, 1, 2],
        "evaluate": {"cold": {}, "warm": {}, "hot": {}},
        "checks": [{"claim": "diversity rises", "metric": "distinct_2", "better": "higher",
                    "along": ["cold", "warm", "hot"]},
                   {"claim": "speed-up grows", "metric": "speedup", "better": "higher",
                    "along": [16, 256]}],
        "plots": [{"kind": "frontier", "metric": "loglik", "diversity": "distinct_2"}]}


def fake_metrics(cell, seed):
    out = {"val_loss": 1.0}
    for i, name in enumerate(["cold", "warm", "hot"]):
        out[f"distinct_2@{name}"] = 0.2 + 0.3 * i + 0.01 * seed
        out[f"loglik@{name}"] = -1.0 - i + 0.01 * seed
    out.update({"speedup@16": 1.5 + 0.1 * seed, "speedup@256": 4.0 + 0.1 * seed})
    return out


def test_trend_check_judges_each_consecutive_pair_and_frontier_is_drawn(tmp_path):
    make_grid(tmp_path, SPEC, fake_metrics)
    grid = table.load(tmp_path / "dec")
    rising, speed = verdicts.evaluate_grid(grid)
    assert rising["verdict"] == "supported" and "cold 0.21 -> warm 0.51" in rising["evidence"]
    assert speed["verdict"] == "supported"
    flipped = {**SPEC["checks"][0], "better": "lower"}
    assert verdicts.evaluate(flipped, grid)["verdict"] == "not_supported"
    command.report_grid(tmp_path / "dec")
    front = pd.read_csv(tmp_path / "dec" / "01_frontier_loglik.csv")
    assert front["evaluation"].tolist() == ["cold", "warm", "hot"]
    assert front["pareto"].all()                       # each trades one for the other


def test_a_length_metric_keeps_its_name_in_the_report():
    from ablations.store import eval_metrics
    got = eval_metrics({"speed": {"metrics": {"speedup@16": 2.0, "same_tokens": 1.0}}})
    assert got == {"speedup@16": 2.0, "same_tokens@speed": 1.0}


@pytest.mark.parametrize("along,words", [
    ("[cold]", ["checks[0].along", "at least 2"]),
    ("[cold, tepid]", ["checks[0].along", "tepid", "valid: cold"]),
])
def test_bad_trend_is_one_line_exit_2(tmp_path, capsys, along, words):
    from ablations.cli import main as cli
    path = tmp_path / "bad.yaml"
    path.write_text(f"""
name: bad
claim: x
task: {{name: copy}}
evaluate:
  cold: {{model.dropout: 0.0}}
  hot: {{model.dropout: 0.1}}
checks:
  - {{claim: x, metric: val_loss, along: {along}}}
""")
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err
