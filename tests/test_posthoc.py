"""Post-hoc evaluations (ablations/posthoc/): a grid's
`evaluate:` is validated before anything runs, computed once per finished run without
retraining, recomputed when its spec changes, and read by the report as <metric>@<NAME>."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from ablations import store
from ablations.posthoc.spec import check_evaluate, overrides
from ablations.cli import main as cli
from ablations.config import resolve, run_id

GRID = """
name: tiny_mask
claim: An encoder needs to see the future.
task: {name: disambiguate, length: 8, n_fillers: 4, n_words: 2, n_cues: 4}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 30, batch_size: 16, warmup: 5, eval_every: 30, eval_batches: 2,
          log_every: 10, diag_every: 30, ckpt_every: 30, threads: 1}
axes:
  model.causal: [false, true]
seeds: [0]
evaluate:
  causal: {model.causal: true}
checks:
  - {claim: masked is near chance, metric: val_acc@causal, select: {model.causal: true},
     below: 0.9}
plots:
  - {kind: bar, metric: val_acc@causal, x: model.causal}
"""


def mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*.json"))}


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("posthoc")
    path = tmp / "tiny_mask.yaml"
    path.write_text(GRID)
    results = tmp / "results"
    assert cli(["run", str(path), "--results", str(results), "--workers", "1"]) == 0
    return path, results


def run_dirs(results):
    return sorted((results / "tiny_mask" / "runs").iterdir())


def test_evaluation_of_each_run_is_stored(grid_run):
    _, results = grid_run
    for rd in run_dirs(results):
        data = store.read_json(rd / "evals" / "causal.json")
        assert data["name"] == "causal" and data["spec"] == {"model.causal": True}
        assert data["config"]["model"]["causal"] is True
        assert set(data["metrics"]) == {"val_loss", "val_acc", "val_exact"}
        result = store.read_json(rd / store.RESULT)
        if result["config"]["model"]["causal"]:
            # the same weights under the same mask: the run's own final val metrics
            for k, v in data["metrics"].items():
                assert v == pytest.approx(result["metrics"][k], abs=1e-5)


def test_rerun_does_nothing(grid_run, capsys):
    path, results = grid_run
    before = mtimes(results / "tiny_mask" / "runs")
    capsys.readouterr()
    assert cli(["run", str(path), "--results", str(results), "--workers", "1"]) == 0
    assert "post-hoc" not in capsys.readouterr().err
    assert mtimes(results / "tiny_mask" / "runs") == before


def test_report_reads_evaluations_as_columns(grid_run):
    _, results = grid_run
    assert cli(["report", "--results", str(results), "--no-explainers", "-q"]) == 0
    summary = pd.read_csv(results / "tiny_mask" / "summary.csv")
    assert {"val_acc@causal", "val_loss@causal"} <= set(summary.columns)
    assert summary["val_acc@causal"].notna().all()
    verdict = store.read_json(results / "tiny_mask" / "verdicts.json")[0]
    assert verdict["metric"] == "val_acc@causal" and "cannot evaluate" not in verdict["evidence"]
    assert list((results / "tiny_mask").glob("01_bar_val_acc_at_causal*.png"))


def test_an_added_or_changed_evaluation_is_computed_without_retraining(grid_run, tmp_path, capsys):
    path, results = grid_run
    grown = tmp_path / "tiny_mask.yaml"
    grown.write_text(path.read_text().replace(
        "  causal: {model.causal: true}\n",
        "  causal: {model.causal: true, train.eval_batches: 3}\n"
        "  bidir: {model.causal: false, where: {model.causal: true}}\n"))
    results_before = {rd: (rd / store.RESULT).stat().st_mtime_ns for rd in run_dirs(results)}
    capsys.readouterr()
    assert cli(["run", str(grown), "--results", str(results), "--workers", "1"]) == 0
    assert "3 post-hoc evaluation(s) of 2 run(s)" in capsys.readouterr().err
    for rd in run_dirs(results):
        assert (rd / store.RESULT).stat().st_mtime_ns == results_before[rd]   # not retrained
        causal = store.read_json(rd / store.RESULT)["config"]["model"]["causal"]
        assert (rd / "evals" / "bidir.json").exists() == causal               # where: selects
        assert store.read_json(rd / "evals" / "causal.json")["config"]["train"]["eval_batches"] == 3
    # back to the original spec for the other tests
    assert cli(["run", str(path), "--results", str(results), "--workers", "1"]) == 0


@pytest.mark.parametrize("evaluate,words", [
    ("{shape: {model.d_model: 32}}", ["evaluate.shape", "model.d_model", "parameter shapes"]),
    ("{x: {model.causl: true}}", ["evaluate.x", "did you mean 'causal'"]),
    ("{x: {train.lr: 0.1}}", ["evaluate.x.train.lr", "valid: train.eval_batches"]),
    ("{x: {task.name: lm}}", ["evaluate.x.task.name"]),
    ("{x: {oops: 1}}", ["evaluate.x", "unknown key 'oops'", "valid:"]),
    ("{'7': {model.causal: true}}", ["bad evaluation name '7'"]),
    ("{init: {model.causal: true}}", ["'init' is reserved"]),
    ("{x: {decode_speed: {prompt: hi}}}", ["decode_speed.lengths", "positive integers"]),
    ("{x: {decode_speed: {prompt: hi, lengths: [0]}}}", ["decode_speed.lengths"]),
    ("{x: {decode_speed: {lengths: [4]}}}", ["decode_speed", "prompt"]),
    ("{x: {decode_speed: {prompt: hi, lengths: [4], fast: 1}}}", ["decode_speed.fast"]),
    ("{x: {model.causal: maybe}}", ["model.causal", "expected bool"]),
    ("{x: {task.length: 1}}", ["task.length"]),
    ("{x: {model.causal: true, where: {model.n_layers: 5}}}",
     ["evaluate.x.where", "selects no run"]),
    ("{x: {generate: {prompt: hi}}}", ["generate.prompt", "text task"]),
    ("{x: {generate: {prompt: hi, temperature: -1}}}", ["generate.temperature", ">= 0"]),
    ("[causal]", ["evaluate", "expected a mapping"]),
    ("{step100: {model.causal: true}}", ["step100", "reserved"]),
    ("{auc: {model.causal: true}}", ["auc", "reserved"]),
])
def test_bad_evaluation_is_one_line_exit_2_before_anything_runs(tmp_path, capsys, evaluate, words):
    path = tmp_path / "bad.yaml"
    path.write_text(GRID.replace("  causal: {model.causal: true}\n", "").replace(
        "evaluate:\n", f"evaluate: {evaluate}\n").replace("val_acc@causal", "val_acc"))
    assert cli(["run", str(path), "--results", str(tmp_path / "r"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err
    assert not (tmp_path / "r").exists()


# -- the evaluator on hand-made runs (no training) ----------------------------------------

def fake_run(results, layers, grid="g"):
    """A finished ok run of an untrained model: config.json, model.pt, result.json."""
    from transformer import ModelConfig, build_model
    cfg = resolve(layers, results / ".cache")
    rd = store.run_dir(results, grid, run_id(cfg))
    torch.manual_seed(0)
    net = build_model(ModelConfig(**cfg["model"]))
    rd.mkdir(parents=True)
    store.atomic_write_json(rd / store.CONFIG, cfg)
    torch.save({"config": cfg, "state_dict": net.state_dict()}, rd / "model.pt")
    store.atomic_write_json(rd / store.RESULT, {"status": "ok", "config": cfg, "metrics": {}})
    return rd


LM = [{"task": {"name": "lm", "seq_len": 16},
       "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "causal": False},
       "train": {"eval_batches": 2, "batch_size": 4}}]


def test_generate_samples_are_seeded_and_stored(tmp_path):
    rd = fake_run(tmp_path, LM)
    spec = {"generate": {"prompt": "def ", "max_new_tokens": 12, "temperature": 0.8,
                         "samples": 2}}
    arg = f"s={json.dumps(spec)}"
    assert cli(["_evaluate", str(rd), "--eval", arg]) == 0
    first = store.read_json(rd / "evals" / "s.json")
    # no overrides: no val metrics to re-score, only the samples' own
    assert set(first["metrics"]) == {"distinct_1", "distinct_2", "distinct_3",
                                     "distinct_2_within", "distinct_2_across", "repetition",
                                     "loglik"}
    texts = [s["text"] for s in first["samples"]]
    assert len(texts) == 2 and all(len(t) == 12 for t in texts) and texts[0] != texts[1]
    assert cli(["_evaluate", str(rd), "--eval", arg, "--force"]) == 0
    assert [s["text"] for s in store.read_json(rd / "evals" / "s.json")["samples"]] == texts


def test_unmasked_model_is_rescored_with_the_mask(tmp_path):
    rd = fake_run(tmp_path, LM)
    assert cli(["_evaluate", str(rd), "--eval", 'causal={"model.causal": true}']) == 0
    m = store.eval_metrics(store.read_evals(rd))
    assert set(m) == {"val_loss@causal", "val_acc@causal", "val_cont_loss@causal"}
    # what the mask changes: the unmasked forward differs from the masked one
    config, net = store.read_model(rd)
    x = torch.randint(0, 50, (1, 16))
    a = net(x)
    b = store.read_model(rd, {**config["model"], "causal": True})[1](x)
    assert torch.allclose(a[:, -1], b[:, -1], atol=1e-5) and not torch.allclose(a, b)


def test_check_evaluate_accepts_the_documented_forms():
    spec = {"causal": {"model.causal": True},
            "long": {"task.seq_len": 256, "train.eval_batches": 4},
            "sample": {"where": {"task.name": "lm"},
                       "generate": {"prompt": "The ", "max_new_tokens": 50, "temperature": 0}}}
    assert check_evaluate(spec) == spec
    assert check_evaluate(None) == {}
    assert overrides(spec["long"]) == {"model": {}, "task": {"seq_len": 256},
                                             "train": {"eval_batches": 4}}
