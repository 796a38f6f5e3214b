"""`ablate replicate`: the `replicate:` block's validation, which runs a replication
needs (the verdicts' cells; tuned grids at their chosen values), the corpus replication
before its file exists, and an end-to-end replication with a fake `_run_one` judged by
`ablate report`."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest

from ablations.cli import main as cli
from ablations.grid import SHIPPED
from ablations.grid.load import load
from ablations.grid.replication_spec import text_experiments
from report_fixtures import make_grid

GRID = """
name: rep
claim: A positional encoding helps.
task: {name: order, length: 8}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1, max_len: 16}
  train: {steps: 20, batch_size: 8, eval_every: 10, eval_batches: 2, ckpt_every: 10}
axes:
  model.pos: [none, sinusoidal, learned]
  model.n_layers: [1, 2]
seeds: [0, 1]
replicate: {seeds: [5, 6]}
checks:
  - {claim: sinusoidal beats none, metric: val_acc, better: higher,
     where: {model.n_layers: 1},
     compare: {model.pos: sinusoidal}, against: {model.pos: none}}
  - {claim: learned sits high, metric: val_acc, sanity: true,
     select: {model.pos: learned}, above: 0.1}
"""

FAKE = """
import json, os, sys
rd = sys.argv[1]
cfg = json.load(open(os.path.join(rd, "config.json")))
acc = {"none": 0.5, "sinusoidal": 0.9}.get(cfg["model"].get("pos"), 0.7)
acc += 0.01 * (cfg["train"]["seed"] % 3)
with open(os.path.join(rd, "result.json"), "w") as f:
    json.dump({"status": "ok", "reason": None, "config": cfg,
               "metrics": {"val_acc": acc, "val_loss": 1 - acc}, "wall_s": 1.0,
               "tokens": 100, "tokens_per_s": 100.0, "train_s": 1.0}, f)
"""


def grid_file(tmp_path, text=GRID, **replace) -> str:
    text = textwrap.dedent(text)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "rep.yaml"
    path.write_text(text)
    return str(path)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("block, field", [
    ("{seeds: [1, 6]}", "replicate.seeds: seed 1 is also in seeds"),
    ("{seeds: [5]}", "replicate.seeds: expected at least 2"),
    ("{seeds: [5, 5]}", "replicate.seeds: expected at least 2 distinct"),
    ("{seeds: [5, 6], corpus: python-docs}", "replicate.corpus: the grid has no text task"),
    ("{seeds: [5, 6], retune: true}", "replicate.retune: the grid tunes nothing"),
    ("{seeds: [5, 6], seed: 3}", "replicate: unknown key 'seed'"),
])
def test_a_bad_replicate_block_is_one_line_and_exit_2(tmp_path, capsys, block, field):
    path = grid_file(tmp_path, **{"{seeds: [5, 6]}": block})
    for command in ("run", "replicate"):
        code, _, err = run(capsys, command, path, "--dry-run", "--results", tmp_path / "r")
        assert code == 2 and field in err and len(err.strip().splitlines()) == 1, err


def test_no_replicate_block_is_an_error_for_replicate_only(tmp_path, capsys):
    path = grid_file(tmp_path, **{"replicate: {seeds: [5, 6]}\n": ""})
    code, _, err = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r")
    assert code == 2 and "replicate: required" in err
    code, out, _ = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r",
                       "--seeds", "7,8")
    assert code == 0 and out.count("pending") == 4        # --seeds declares one


@pytest.mark.parametrize("argv, says", [
    (("--seeds", "1,9"), "--seeds: seed 1 is also in seeds"),
    (("--seeds", "9"), "--seeds: expected at least 2"),
    (("--seeds", "a-b"), "--seeds: expected e.g. 1,2,3"),
    (("--corpus", "shakespeare"), "--corpus: the grid has no text task"),
])
def test_bad_seeds_or_corpus_options_are_one_line_and_exit_2(tmp_path, capsys, argv, says):
    code, _, err = run(capsys, "replicate", grid_file(tmp_path), "--dry-run",
                       "--results", tmp_path / "r", *argv)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_the_options_replace_the_declared_seeds_and_corpus(tmp_path, capsys):
    corpus = tmp_path / "other.txt"
    corpus.write_text("a tale of two cities, it was the best of times. " * 40)
    path = grid_file(tmp_path, LM, CORPUS="shakespeare")
    code, out, err = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r",
                         "--seeds", "30-32", "--corpus", f"file:{corpus}")
    assert code == 0 and "held-out seeds: 3 declared" in err
    seeds = [line.split()[1] for line in out.splitlines() if "pending" in line]
    assert sorted(set(seeds)) == ["30", "31", "32"] and len(seeds) == 12
    assert f"file:{corpus}" in out or str(corpus) in out, out
    code, _, err = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r",
                       "--corpus", "flie:x")
    assert code == 2 and "--corpus" in err and "unknown source" in err, err


def test_dry_run_lists_only_the_cells_the_verdicts_read(tmp_path, capsys):
    code, out, _ = run(capsys, "replicate", grid_file(tmp_path), "--dry-run",
                       "--results", tmp_path / "r")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if "pending" in line]
    # check 1 reads none and sinusoidal at one layer; the sanity check reads nothing
    assert sorted((r[1], r[2]) for r in rows) == [
        ("5", "pos=none,"), ("5", "pos=sinusoidal,"), ("6", "pos=none,"),
        ("6", "pos=sinusoidal,")]
    assert "checks 1\n" in out and "replication estimated" in out
    assert not (tmp_path / "r").exists()                      # a dry run writes nothing


@pytest.mark.parametrize("asked, says", [
    (None, "no stored verdicts to size them by"),
    (2, "asks for 3 (the minimum, 3)"),             # never fewer than three
    (4, "asks for 4 (check 1): fewer, so a verdict may fail to replicate for want of power"),
])
def test_the_held_out_seed_count_is_set_against_the_power_estimate(tmp_path, capsys, asked,
                                                                     says):
    if asked is not None:               # the original's verdicts, as `ablate report` wrote
        (tmp_path / "r" / "rep").mkdir(parents=True)
        (tmp_path / "r" / "rep" / "verdicts.json").write_text(json.dumps([
            {"verdict": "supported", "seeds_needed": asked},
            {"verdict": "inconclusive", "seeds_needed": 9},      # undecided: not asked
            {"verdict": "supported", "seeds_needed": 12, "sanity": True}]))
    code, _, err = run(capsys, "replicate", grid_file(tmp_path), "--dry-run",
                       "--results", tmp_path / "r")
    assert code == 0 and "held-out seeds: 2 declared" in err and says in err, err


def test_a_tuned_grid_replicates_each_variant_at_its_chosen_value(tmp_path, capsys):
    text = GRID.replace("  model.n_layers: [1, 2]\n", "").replace(
        "     where: {model.n_layers: 1},\n", "").replace(
        "seeds: [0, 1]\n", "tune: {train.lr: [0.001, 0.01]}\nseeds: [0, 1]\n").replace(
        "eval_batches: 2,", "eval_batches: 2, test_batches: 2,")
    path = grid_file(tmp_path, text)
    code, _, err = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r")
    assert code == 2 and "replicate: a tuned grid" in err and "retune" in err
    # the original results: none is best at lr 0.01, sinusoidal at 0.001
    best = {("none", 0.01), ("sinusoidal", 0.001), ("learned", 0.001)}
    spec = {"name": "rep", "claim": "c", "task": {"name": "order"}, "seeds": [0, 1],
            "axes": {"model.pos": ["none", "sinusoidal", "learned"]},
            "tune": {"train.lr": [0.001, 0.01]}}
    make_grid(tmp_path / "r", spec, lambda c, s: {
        "val_loss": 0.1 if (c["model.pos"], c["train.lr"]) in best else 0.2,
        "val_acc": 0.5})
    code, out, _ = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r")
    assert code == 0
    rows = {(r[2].rstrip(","), r[3]) for r in (line.split() for line in out.splitlines()
                                              if "pending" in line)}
    assert rows == {("pos=none", "lr=0.01"), ("pos=sinusoidal", "lr=0.001")}
    path = grid_file(tmp_path, text.replace("{seeds: [5, 6]}", "{seeds: [5, 6], retune: true}"))
    code, out, _ = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r")
    assert code == 0 and sum("pending" in line for line in out.splitlines()) == 8


LM = """
name: txt
claim: c
task: {name: lm, source: python-docs, tokenizer: char, seq_len: 16}
base:
  model: {arch: decoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 10, batch_size: 4, eval_every: 10, eval_batches: 1}
axes: {model.pos: [none, rope]}
seeds: [0, 1]
replicate: {seeds: [7, 8], corpus: "file:CORPUS"}
checks:
  - {claim: rope beats none, metric: val_loss, compare: {model.pos: rope},
     against: {model.pos: none}}
"""


def test_the_corpus_may_be_missing_until_its_replication_runs(tmp_path, capsys):
    corpus = tmp_path / "second.txt"
    path = grid_file(tmp_path, LM, CORPUS=str(corpus))
    code, out, _ = run(capsys, "replicate", path, "--dry-run", "--results", tmp_path / "r")
    assert code == 0 and "does not exist yet" in out and "second corpus" in out
    code, _, err = run(capsys, "replicate", path, "--results", tmp_path / "r")
    assert code == 2 and "replicate.corpus: no such file" in err and "--only seeds" in err
    assert not (tmp_path / "r" / "txt").exists()              # nothing ran
    bad = grid_file(tmp_path, LM.replace("file:CORPUS", "flie:x"))
    code, _, err = run(capsys, "replicate", bad, "--dry-run", "--results", tmp_path / "r")
    assert code == 2 and "replicate.corpus" in err and "unknown source" in err
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    code, out, _ = run(capsys, "replicate", grid_file(tmp_path, LM, CORPUS=str(corpus)),
                       "--dry-run", "--results", tmp_path / "r")
    assert code == 0 and "does not exist yet" not in out
    assert out.count("pending") == 8                     # 2 cells x 2 seeds, twice


def test_replicate_runs_resumes_and_the_report_judges_it(tmp_path, capsys, monkeypatch):
    script = tmp_path / "fake_run_one.py"
    script.write_text(textwrap.dedent(FAKE))
    monkeypatch.setenv("ABLATE_RUN_ONE_CMD", f"{sys.executable} {script}")
    path, results = grid_file(tmp_path), tmp_path / "r"
    assert run(capsys, "run", path, "--results", results)[0] == 0
    code, _, err = run(capsys, "replicate", path, "--results", results)
    assert code == 0 and "4 to run" in err
    folder = results / "rep" / "replication" / "seeds"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["replication"]["checks"] == [0] and len(manifest["runs"]) == 4
    assert {e["seed"] for e in manifest["runs"]} == {5, 6}
    code, _, err = run(capsys, "replicate", path, "--results", results)
    assert code == 0 and "4 already finished, 0 to run" in err
    assert run(capsys, "report", "--results", results, "--no-explainers", "-q")[0] == 0
    entries = json.loads((results / "rep" / "verdicts.json").read_text())
    assert entries[0]["replicated"] == {"seeds": "supported", "corpus": None}
    assert entries[1]["sanity"] and entries[1]["replicated"]["seeds"] is None
    assert "(`ablate replicate`) on held-out seeds 5, 6." in \
        (results / "rep" / "README.md").read_text()
    # a reviewer's own unseen seeds, without editing the grid: that replication is the
    # one the report shows; the declared one's runs are kept and found again
    code, _, err = run(capsys, "replicate", path, "--results", results, "--seeds", "20-22")
    assert code == 0 and "6 to run" in err and "4 run folder(s)" in err, err
    assert run(capsys, "report", "--results", results, "--no-explainers", "-q")[0] == 0
    assert "on held-out seeds 20, 21, 22." in (results / "rep" / "README.md").read_text()
    code, _, err = run(capsys, "replicate", path, "--results", results)
    assert code == 0 and "4 already finished, 0 to run" in err


def test_an_untuned_experiment_of_a_tuned_grid_is_replicated_too():
    """Its variants have no chosen value (NaN in the sweep): every run of them is read,
    whatever its config's value of the tuned key."""
    import types

    from ablations.grid.replication_spec import RunView, reads

    def view(experiment, lr, variant):
        run = types.SimpleNamespace(experiment=experiment, bundle=None, seed=1000, axes={},
                                    config={"train": {"lr": lr}})
        v = RunView(run)
        v.variant = variant
        return v
    chosen = {"probe: a": {"train.lr": float("nan")}, "text: b": {"train.lr": 0.01}}
    check = {"claim": "c", "metric": "val_acc", "select": {"seed": 1000}, "above": 0.5}
    assert reads(check, view("probe", 0.003, "probe: a"), chosen)
    assert reads(check, view("text", 0.01, "text: b"), chosen)
    assert not reads(check, view("text", 0.003, "text: b"), chosen)


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")) + sorted(
    SHIPPED.glob("ladders/*.yaml")), ids=lambda p: str(p.relative_to(SHIPPED).with_suffix("")))
def test_every_shipped_grid_and_ladder_declares_its_replication(path):
    """`./run_all.sh --replicate [--ladders]` replicates every shipped grid: each declares
    at least 3 held-out seeds, and a second corpus where it trains on text."""
    grid = load(path)
    rep = grid.spec.get("replicate")
    assert rep, f"{path.name}: no replicate: block"
    assert len(rep["seeds"]) >= 3
    assert ("corpus" in rep) == bool(text_experiments(grid)), path.name
