"""A `generate:` evaluation judged by another run of the grid (`scorer:`): samples are
scored by a model that did not write them, the scorer is validated before anything
trains, and a replication reruns the judges of the cells it replicates. Also a scale's
`evaluate:`, which changes an evaluation's fields (fewer samples) at that scale."""
from __future__ import annotations

import math

import pytest

from ablations import store
from ablations.cli import main as cli

GRID = """
name: tiny_judge
claim: A judge that did not write the samples scores them.
task: {name: lm, seq_len: 16}
base:
  model: {arch: decoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 10, batch_size: 4, warmup: 2, eval_every: 10, eval_batches: 2,
          log_every: 5, diag_every: 10, ckpt_every: 10, threads: 1}
experiments:
  writer: {}
  judge:
    base: {model: {n_layers: 2}}
seeds: [0, 1]
replicate: {seeds: [5, 6]}
evaluate:
  warm:
    where: {experiment: writer}
    generate: {prompt: "def ", max_new_tokens: 8, temperature: 1.0, samples: 3,
               scorer: SCORER}
smoke:
  evaluate: {warm: {generate: {samples: 2}}}
checks:
  - {claim: judged, metric: loglik_scorer@warm, select: {experiment: writer}, below: 0}
plots:
  - {kind: bar, metric: loglik_scorer@warm, x: experiment, where: {experiment: writer}}
"""


def write(tmp_path, scorer="{experiment: judge}"):
    path = tmp_path / "tiny_judge.yaml"
    path.write_text(GRID.replace("SCORER", scorer))
    return path


def test_samples_are_scored_by_the_judge_of_their_seed(tmp_path, capsys):
    path, results = write(tmp_path), tmp_path / "r"
    assert cli(["run", str(path), "--smoke", "--results", str(results), "--workers", "1"]) == 0
    manifest = store.read_manifest(results / "tiny_judge")
    by_exp = {(e["experiment"], e["seed"]): e["run_id"] for e in manifest["runs"]}
    for seed in (0, 1):
        writer = results / "tiny_judge" / "runs" / by_exp["writer", seed]
        stored = store.read_json(writer / "evals" / "warm.json")
        assert len(stored["samples"]) == 2                 # the smoke scale's, not 3
        assert stored["spec"]["generate"]["samples"] == 2
        m = stored["metrics"]
        assert math.isfinite(m["loglik_scorer"]) and m["loglik_scorer"] != m["loglik"]
        # the judge is the run of the same seed: re-score the samples with it by hand
        from ablations.posthoc.compute import scorer_model
        judge = scorer_model(writer, store.read_config(writer), {"experiment": "judge"})
        assert sum(p.numel() for p in judge.parameters()) > 0
        judge_dir = results / "tiny_judge" / "runs" / by_exp["judge", seed]
        assert not (judge_dir / "evals").exists()          # where: the judge is not sampled
    assert cli(["report", "--results", str(results), "--no-explainers", "tiny_judge"]) == 0
    capsys.readouterr()
    # a replication reruns the checked writer cell and, with it, the judge of its seed
    assert cli(["replicate", str(path), "--smoke", "--results", str(results),
                "--dry-run"]) == 0
    out = capsys.readouterr()
    rows = [line.split() for line in (out.out + out.err).splitlines()
            if line.endswith("pending")]
    assert sorted((r[1], r[2]) for r in rows) == [("5", "judge"), ("5", "writer"),
                                                  ("6", "judge"), ("6", "writer")], rows


@pytest.mark.parametrize("scorer, words", [
    ("{experiment: nobody}", ["generate.scorer", "names 0 runs"]),
    ("{experiment: writer}", ["generate.scorer", "sampling run itself"]),
    ("{}", ["generate.scorer", "selector"]),
    ("judge", ["generate.scorer", "expected dict"]),
])
def test_a_bad_scorer_is_one_line_exit_2_before_anything_runs(tmp_path, capsys, scorer, words):
    path = write(tmp_path, scorer)
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "r" / "tiny_judge").exists()     # (the token cache may be)


@pytest.mark.parametrize("smoke, words", [
    ("{evaluate: {cold: {generate: {samples: 1}}}}", ["smoke.evaluate.cold", "valid: warm"]),
    ("{evaluate: {warm: {generate: {samples: 0}}}}", ["evaluate.warm.generate.samples"]),
    ("{evaluate: {warm: 3}}", ["smoke.evaluate.warm", "non-empty mapping"]),
    ("{evaluate: [warm]}", ["smoke.evaluate", "expected a mapping"]),
])
def test_a_bad_scale_evaluation_is_one_line_exit_2(tmp_path, capsys, smoke, words):
    path = write(tmp_path)
    path.write_text(path.read_text().replace(
        "smoke:\n  evaluate: {warm: {generate: {samples: 2}}}", f"smoke: {smoke}"))
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err
