"""Grid specs: every kind of bad input is one line on stderr, exit 2, nothing written;
a good grid expands into distinct runs (shared cells once, excludes pruned)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ablations import grid as grids
from ablations.cli import main as cli

GOOD = """
name: demo
claim: Positions matter.
task: {name: order, length: 8}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 20}
axes:
  model.pos: [none, sinusoidal]
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli(list(map(str, argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


BAD = {
    "unknown top key": (lambda g: g + "seed: [1]\n", "unknown key 'seed' (did you mean 'seeds'?)"),
    "unknown variant": (lambda g: edit(g, "[none, sinusoidal]", "[none, ropee]"),
                        "model.pos: unknown pos 'ropee' (did you mean 'rope'?); valid: none"),
    "unknown task": (lambda g: edit(g, "name: order", "name: ordr"),
                     "task.name: unknown task 'ordr' (did you mean 'order'?)"),
    "unknown field": (lambda g: edit(g, "n_layers: 1", "n_layer: 1"),
                      "model.n_layer: unknown field (did you mean 'n_layers'?)"),
    "unknown section": (lambda g: edit(g, "model.pos:", "modle.pos:"),
                        "did you mean 'model'?"),
    "wrong type": (lambda g: edit(g, "steps: 20", "steps: lots"),
                   "train.steps: expected int, got str 'lots'"),
    "axis not a list": (lambda g: edit(g, "[none, sinusoidal]", "rope"),
                        "axes.model.pos: expected a list of values"),
    "empty axis": (lambda g: edit(g, "[none, sinusoidal]", "[]"), "axes.model.pos: empty axis"),
    "invalid combination": (lambda g: edit(g, "n_heads: 2", "n_heads: 3"),
                            "cell model.pos=none: model.d_model: 16 is not divisible by n_heads=3"),
    "broken yaml": (lambda g: g + "plots: [unclosed\n", "invalid YAML at line"),
    "duplicate key": (lambda g: g + "seeds: [3]\n", "duplicate key 'seeds'"),
    "bad seeds": (lambda g: edit(g, "seeds: [0, 1]", "seeds: [0, 0]"), "seeds: expected distinct"),
    "missing claim": (lambda g: edit(g, "claim: Positions matter.", ""), "claim: required"),
    "bundle clashes with axis": (
        lambda g: g + "bundles: {small: {model.pos: rope}}\n", "model.pos is also an axis"),
    "exclude matches nothing": (
        lambda g: g + "exclude: [{model.pos: rope}]\n",
        "exclude[0]: {'model.pos': 'rope'} matches no cell"),
    "exclude everything": (
        lambda g: g + "exclude: [{model.pos: [none, sinusoidal]}]\n", "exclude removes every cell"),
    "check form": (
        lambda g: g + "checks: [{claim: x, metric: val_acc, compare: {model.pos: none}}]\n",
        "checks[0]: compare needs against"),
    "check key": (lambda g: g + "checks: [{claim: x, metric: m, best: {model.pos: none}, "
                  "bettr: higher}]\n", "checks[0]: unknown key 'bettr' (did you mean 'better'?)"),
    "check metric": (lambda g: g + "checks: [{claim: x, metric: val_los, better: lower, "
                     "best: {model.pos: none}}]\n",
                     "checks[0].metric: unknown metric 'val_los' (did you mean 'val_loss'?)"),
    "check metric suffix": (
        lambda g: g + "checks: [{claim: x, metric: val_loss@causl, better: lower, "
        "best: {model.pos: none}}]\n",
        "checks[0].metric: unknown suffix in 'val_loss@causl': @causl is neither an evaluation"),
    "check metric length": (
        lambda g: g + "checks: [{claim: x, metric: val_acc@256, better: higher, "
        "best: {model.pos: none}}]\n",
        "checks[0].metric: unknown length in 'val_acc@256': @256 is not a length the grid "
        "evaluates"),
    "plot metric": (lambda g: g + "plots: [{kind: bar, metric: val_perplexity, x: model.pos}]\n",
                    "plots[0].metric: unknown metric 'val_perplexity'"),
    "plot kind": (lambda g: g + "plots: [{kind: pie, metric: val_acc, x: model.pos}]\n",
                  "plots[0].kind: expected one of bar, cross_attention, curve"),
    "plot axis": (lambda g: g + "plots: [{kind: bar, metric: val_acc, x: model.poss}]\n",
                  "plots[0].x: unknown key 'model.poss' (did you mean 'model.pos'?)"),
    "plugin": (lambda g: g + "plugins: [no_such_module_xyz]\n",
               "plugin: 'no_such_module_xyz' cannot be imported"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_grid_is_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    make, expected = BAD[case]
    path = write(tmp_path, make(GOOD))
    results = tmp_path / "results"
    code, out, err = run_cli(capsys, "run", path, "--results", results)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"ablate run: error: {path}: "), err
    assert err.count(str(path)) == 1, err
    assert expected in err, err
    assert not results.exists()


def test_missing_file_and_bad_options(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", tmp_path / "nope.yaml")
    assert code == 2 and err == f"ablate run: error: {tmp_path / 'nope.yaml'}: no such file\n"
    path = write(tmp_path, GOOD)
    for argv, expected in ((["--set", "model.pos"], "expected section.key=value"),
                           (["--seeds", "x"], "--seeds: expected e.g. 1,2,3"),
                           (["--workers", "0"], "--workers: must be >= 1"),
                           (["--devices", "gpu0"], "--devices: expected cpu, auto or distinct"),
                           (["--set", "model.pos=ropee"], "unknown pos 'ropee'")):
        code, _, err = run_cli(capsys, "run", path, "--results", tmp_path / "r", *argv)
        assert code == 2 and err.count("\n") == 1 and expected in err, (argv, err)
    assert not (tmp_path / "r").exists()


def test_expand_layers_seeds_and_labels(tmp_path):
    path = write(tmp_path, GOOD + "smoke: {train: {steps: 5}}\n")
    g = grids.load(path)
    runs = grids.expand(g)
    assert [(r.label, r.seed) for r in runs] == [
        ("pos=none", 0), ("pos=sinusoidal", 0), ("pos=none", 1), ("pos=sinusoidal", 1)]
    assert len({r.run_id for r in runs}) == 4
    assert all(r.config["train"]["steps"] == 20 for r in runs)
    smoke = grids.expand(g, scale="smoke", sets={"train.lr": "1e-3"}, seeds=[7])
    assert [r.seed for r in smoke] == [7, 7]
    assert smoke[0].config["train"]["steps"] == 5
    assert smoke[0].config["train"]["lr"] == 0.001        # YAML's '1e-3' string, coerced
    assert smoke[0].config["train"]["seed"] == 7
    # same grid, same ids: run ids are stable across processes and invocations
    assert [r.run_id for r in grids.expand(grids.load(path))] == [r.run_id for r in runs]


def test_ignored_fields_share_a_run_and_exclude_prunes(tmp_path):
    path = write(tmp_path, edit(GOOD, "  model.pos: [none, sinusoidal]",
                                "  model.arch: [decoder, lstm]\n"
                                "  model.pos: [none, sinusoidal, rope]") +
                 "exclude: [{model.arch: decoder, model.pos: rope}]\n")
    runs = grids.expand(grids.load(path), seeds=[0])
    entries = [r.manifest_entry() for r in runs]
    assert [e["label"] for e in entries] == [
        "arch=decoder, pos=none", "arch=decoder, pos=sinusoidal", "arch=lstm"]
    lstm = entries[-1]
    assert lstm["axes"] == {"model.arch": "lstm", "model.pos": None}   # trained once
    assert "pos" not in runs[-1].config["model"]


def test_bundles_are_an_extra_axis_of_coupled_overrides(tmp_path):
    path = write(tmp_path, edit(GOOD, "  model.pos: [none, sinusoidal]", "  model.pos: [rope]") +
                 "bundles:\n"
                 "  h1_dk8: {model.n_heads: 1, model.d_model: 8}\n"
                 "  h2_dk8: {model.n_heads: 2, model.d_model: 16}\n"
                 "baseline: {bundle: h1_dk8}\n"
                 "checks:\n"
                 "  - {claim: more heads help, metric: val_acc, better: higher,\n"
                 "     compare: {bundle: h2_dk8}, against: {bundle: h1_dk8}}\n"
                 "  - {claim: chance, metric: val_acc, select: {model.n_heads: 1}, below: 0.6}\n"
                 "plots: [{kind: bar, metric: val_acc, x: bundle, hue: model.pos}]\n")
    runs = grids.expand(grids.load(path), seeds=[0])
    assert [(r.label, r.bundle) for r in runs] == [("pos=rope, h1_dk8", "h1_dk8"),
                                                   ("pos=rope, h2_dk8", "h2_dk8")]
    assert [r.config["model"]["d_model"] for r in runs] == [8, 16]


def test_shipped_grids_are_valid_and_smoke_is_small():
    shipped = sorted(grids.SHIPPED.glob("*.yaml"))
    assert shipped
    for path in shipped:
        g = grids.load(path)
        assert g.name == path.stem and g.checks and g.plots and g.smoke
        runs, full = grids.expand(g, scale="smoke"), grids.expand(g)
        # every variant of the grid, each at fewer swept rates at most (a smoke tune:)
        assert {r.variant or r.label for r in runs} == {r.variant or r.label for r in full}
        assert len(runs) <= len(full)
        # a grid whose steps are an axis (lm_extrapolation's budget) keeps them
        assert all(r.config["train"]["steps"] <= 50 or "train.steps" in r.axes for r in runs)


def test_parse_seeds():
    from ablations.grid.runner import parse_seeds
    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]


EXPERIMENTS = """
name: two_tasks
claim: Attention recalls; order needs positions.
task: {name: recall, seq_len: 16, k: 2}
base:
  model: {d_model: 16, n_heads: 2, n_layers: 1}
  train: {steps: 20}
experiments:
  distance:
    axes: {task.k: [2, 4], model.arch: [lstm, decoder]}
  order:
    task: {name: order, length: 8}
    base: {model: {arch: encoder}}
    axes: {model.pos: [none, rope]}
checks:
  - {claim: decoder recalls, metric: val_acc, compare: {model.arch: decoder},
     against: {model.arch: lstm}, where: {experiment: distance}}
plots: [{kind: line, metric: val_acc, x: task.k, hue: model.arch, where: {experiment: distance}}]
"""


def test_a_scale_can_override_one_experiment(tmp_path):
    text = EXPERIMENTS + ("scales:\n  big:\n    train: {steps: 30}\n"
                          "    experiments: {order: {train: {steps: 50}, task: {length: 10}}}\n")
    runs = grids.expand(grids.load(write(tmp_path, text)), scale="big")
    steps = {(r.experiment, r.config["train"]["steps"]) for r in runs}
    assert steps == {("distance", 30), ("order", 50)}
    assert {r.config["task"].get("length") for r in runs if r.experiment == "order"} == {10}


@pytest.mark.parametrize("scale, expected", [
    ("  big: {task: {k: 8}}\n", "scales.big: task.k is an axis of experiment distance"),
    ("  big: {experiments: {order: {model: {pos: rope}}}}\n",
     "scales.big: model.pos is an axis of experiment order"),
])
def test_a_scale_may_not_collapse_an_axis(tmp_path, capsys, scale, expected):
    path = write(tmp_path, EXPERIMENTS + "scales:\n" + scale)
    code, _, err = run_cli(capsys, "run", path, "--results", tmp_path / "r", "--dry-run")
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_experiments_have_their_own_task_axes_and_labels(tmp_path):
    runs = grids.expand(grids.load(write(tmp_path, EXPERIMENTS)))
    entries = [r.manifest_entry() for r in runs]
    assert [e["label"] for e in entries] == [
        "distance: k=2, arch=lstm", "distance: k=2, arch=decoder",
        "distance: k=4, arch=lstm", "distance: k=4, arch=decoder",
        "order: pos=none", "order: pos=rope"]
    assert {e["experiment"] for e in entries} == {"distance", "order"}
    recall, order = runs[0].config, runs[-1].config
    assert recall["task"]["name"] == "recall" and recall["task"]["seq_len"] == 16
    assert order["task"] == {**order["task"], "name": "order", "length": 8}
    assert "seq_len" not in order["task"]              # another task: the grid's fields go
    assert order["model"]["arch"] == "encoder" and order["model"]["d_model"] == 16


@pytest.mark.parametrize("change, expected", [
    (lambda g: edit(g, "    axes: {model.pos: [none, rope]}", "    seeds: [1]"),
     "experiments.order: unknown key 'seeds'"),
    (lambda g: edit(g, "where: {experiment: distance}}\nplots",
                    "where: {experiment: distnce}}\nplots"),
     "checks[0].where: {'experiment': 'distnce'} matches no cell"),
    (lambda g: edit(g, "    task: {name: order, length: 8}", "    task: {name: ordr}"),
     "experiments.order.task.name: unknown task 'ordr' (did you mean 'order'?)"),
    (lambda g: edit(g, "axes: {model.pos: [none, rope]}", "axes: {model.pos: [none, ropee]}"),
     "experiments.order.axes.model.pos: unknown pos 'ropee' (did you mean 'rope'?)"),
])
def test_bad_experiments_are_one_line_errors(tmp_path, capsys, change, expected):
    path = write(tmp_path, change(EXPERIMENTS))
    code, _, err = run_cli(capsys, "run", path, "--results", tmp_path / "r", "--dry-run")
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_scales_pick_overrides_and_a_results_folder(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD + "scales:\n  big: {model: {d_model: 32}, train: {steps: 30}}\n"
                 "smoke: {train: {steps: 5}}\n")
    g = grids.load(path)
    assert set(g.scales) == {"big", "smoke"}
    assert {r.config["model"]["d_model"] for r in grids.expand(g, scale="big")} == {32}
    assert {r.config["train"]["steps"] for r in grids.expand(g, scale="smoke")} == {5}
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "run", path, "--scale", "big", "--dry-run")
    assert code == 0 and "results-big/demo" in out and "est. time" in out
    code, _, err = run_cli(capsys, "run", path, "--scale", "huge", "--dry-run")
    assert code == 2 and "--scale: unknown scale 'huge'; valid: big, smoke" in err
    assert not (tmp_path / "results-huge").exists()


@pytest.mark.parametrize("path", sorted(grids.SHIPPED.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_grid_has_a_gpu_scale_that_resolves(path, capsys):
    code, out, err = run_cli(capsys, "run", path, "--scale", "gpu", "--dry-run")
    assert code == 0, err
    assert " gpu " in out and "pending" in out


MATCHED = """
name: matched
claim: Compared at one parameter count.
task: {name: recall, seq_len: 16, k: 2}
base:
  model: {n_heads: 2, n_layers: 1}
  train: {steps: 20}
match: {params: 20000, by: model.d_model}
axes:
  model.arch: [lstm, gru, rnn, decoder]
"""


def test_match_solves_each_cells_width_within_tolerance(tmp_path, capsys):
    from ablations.grid.budget import count_params
    runs = grids.expand(grids.load(write(tmp_path, MATCHED)))
    widths = {r.config["model"]["arch"]: r.config["model"]["d_model"] for r in runs}
    assert len(set(widths.values())) == 4                  # each arch its own width
    for run in runs:
        assert abs(count_params(run.config["model"]) / 20000 - 1) <= 0.05, run.label
    code, out, _ = run_cli(capsys, "run", write(tmp_path, MATCHED), "--dry-run",
                           "--results", tmp_path / "r")
    assert code == 0 and "d_model" in out.splitlines()[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("change, expected", [
    (lambda g: edit(g, "params: 20000", "params: 3"), "match.params"),
    (lambda g: edit(g, "by: model.d_model", "by: model.n_layers"), "match.by: expected"),
    (lambda g: edit(g, "model.arch: [lstm, gru, rnn, decoder]", "model.d_model: [8, 16]"),
     "match.by: model.d_model is also an axis"),
])
def test_bad_match_is_a_one_line_error(tmp_path, capsys, change, expected):
    code, _, err = run_cli(capsys, "run", write(tmp_path, change(MATCHED)), "--dry-run",
                           "--results", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and expected in err, err


TYPO = """
name: typo
claim: A check names the value the axis misspells.
task: {name: order, length: 8}
base:
  model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}
axes:
  KEY: [GOOD, BAD]
checks:
  - {claim: c, metric: val_acc, compare: {KEY: FIXED}, against: {KEY: GOOD}}
"""


def _typo_cases():
    from ablations.config import TRAIN_CHOICES
    from transformer import registries
    cases = [(f"model.{field}", reg.names()) for field, reg in registries.items()
             if field != "arch"]
    cases += [(f"train.{field}", list(valid)) for field, valid in TRAIN_CHOICES.items()]
    return cases    # a task's own fields are checked when its cells resolve (needs torch)


@pytest.mark.parametrize("key, names", _typo_cases(), ids=[k for k, _ in _typo_cases()])
def test_a_typo_in_an_axis_value_is_named_before_the_check(tmp_path, capsys, key, names):
    good, fixed = names[0], names[1]
    bad = fixed + fixed[-1]                      # 'rope' -> 'ropee'
    text = TYPO.replace("KEY", key).replace("GOOD", good).replace("FIXED", fixed) \
        .replace("BAD", bad)
    code, _, err = run_cli(capsys, "run", write(tmp_path, text), "--dry-run")
    assert code == 2 and err.count("\n") == 1, err
    assert f"axes.{key}: unknown" in err and f"{bad!r} (did you mean {fixed!r}?)" in err, err


SHARED = """
name: shared
claim: two experiments share a cell
task: {name: copy, length: 4, n_tokens: 4}
base: {model: {d_model: 16, n_layers: 1}, train: {steps: 5}}
experiments:
  pe:
    axes: {model.pos: [rope, alibi]}
  norm:
    base: {model: {pos: rope}}
    axes: {model.norm: [layernorm, rmsnorm]}
seeds: [0]
checks:
  - {claim: rmsnorm is no worse, metric: val_loss, compare: {model.norm: rmsnorm},
     against: {model.norm: layernorm}, where: {experiment: norm}}
"""


def test_a_cell_two_experiments_share_is_trained_once_and_counted_in_both(tmp_path):
    """pe's pos=rope cell and norm's norm=layernorm cell are one config: one run, listed
    under both experiments, so the norm check finds its layernorm side."""
    g = grids.load(write(tmp_path, SHARED))
    runs = grids.expand(g)
    assert len(runs) == 3                                   # rope=layernorm, alibi, rmsnorm
    shared = [r for r in runs if r.shared]
    assert len(shared) == 1
    entry = shared[0].manifest_entry()
    assert entry["experiment"] == "pe" and entry["shared"][0]["experiment"] == "norm"
    assert entry["shared"][0]["axes"] == {"model.norm": "layernorm"}


def test_the_report_counts_a_shared_run_in_each_experiment(tmp_path):
    import json

    from ablations.report.table import load
    from ablations.report.verdicts import evaluate_grid
    g = grids.load(write(tmp_path, SHARED))
    runs = grids.expand(g, seeds=[0, 1, 2])
    gdir = tmp_path / "results" / "shared"
    for r in runs:
        rd = gdir / "runs" / r.run_id
        rd.mkdir(parents=True)
        loss = 1.0 if r.axes.get("model.norm") == "rmsnorm" else 2.0 + 0.01 * r.seed
        (rd / "result.json").write_text(json.dumps({
            "run_id": r.run_id, "status": "ok", "metrics": {"val_loss": loss}, "tokens": 1,
            "config": r.config}))
    (gdir / "manifest.json").write_text(json.dumps({
        "name": "shared", "spec": g.spec, "runs": [r.manifest_entry() for r in runs]}))
    grid = load(gdir)
    assert len(grid.runs) == 12 and grid.n_listed == 9          # 3 shared rows, seeds 0-2
    verdict = evaluate_grid(grid)[0]
    assert verdict["verdict"] == "supported", verdict["evidence"]


LADDERS = sorted((grids.SHIPPED / "ladders").glob("*.yaml"))


@pytest.mark.parametrize("path", LADDERS, ids=lambda p: p.stem)
def test_every_shipped_ladder_is_valid_spans_8x_and_has_small_smoke_and_a_gpu_scale(
        path, capsys):
    g = grids.load(path)
    assert g.name == f"{path.stem}_ladder" and g.checks and g.plots
    runs = grids.expand(g)
    sizes = {r.manifest_entry().get("size") for r in runs} - {None}
    assert len(sizes) >= 3
    assert all(r.config["train"]["steps"] <= 50 for r in grids.expand(g, scale="smoke"))
    code, out, err = run_cli(capsys, "run", path, "--scale", "gpu", "--dry-run")
    assert code == 0, err
