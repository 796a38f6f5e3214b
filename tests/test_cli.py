"""Command-line forms shared by the commands (`--set` takes several KEY=VALUE at once
and may be repeated, the same in every command that has it) and the config reference:
`ablate config`, `ablate list TASK`, `ablate list --fields`, docs/config.md."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ablations import reference
from ablations.cli import COMMANDS, Parser
from ablations.cli import main as cli
from ablations.config import nest, parse_sets, resolve, run_id
from ablations.tasks import TASKS
from transformer import registries

ROOT = Path(__file__).resolve().parents[1]

# every command whose arguments include --set
SET_COMMANDS = ["train", "run", "config"]


def parse(command: str, argv: list[str]):
    module = importlib.import_module(COMMANDS[command][0])
    parser = Parser(prog=f"ablate {command}")
    module.add_arguments(parser)
    positional = ["grid.yaml"] if command == "run" else []
    return parser.parse_args(positional + argv)


@pytest.mark.parametrize("command", SET_COMMANDS)
def test_set_takes_several_values_and_repeats(command):
    args = parse(command, ["--set", "model.pos=rope", "train.steps=5", "--set", "train.lr=1"])
    assert args.sets == ["model.pos=rope", "train.steps=5", "train.lr=1"]


def test_every_command_with_set_is_tested():
    has_set = []
    for name, (module, help_) in COMMANDS.items():
        if help_ is None or name == "bench":
            continue
        parser = Parser(prog=name)
        importlib.import_module(module).add_arguments(parser)
        if any("--set" in a.option_strings for a in parser._actions):
            has_set.append(name)
    assert sorted(has_set) == sorted(SET_COMMANDS)


# ---------------------------------------------------------- the config reference


@pytest.mark.parametrize("task", TASKS.names())
def test_config_prints_every_default_of_each_task(task, capsys, tmp_path):
    assert cli(["config", "--task", task, "--results", str(tmp_path),
                "--set", "train.steps=7", "train.seed=3"]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out)
    assert set(resolved) == {"model", "train", "task"}
    assert {f.key.split(".")[1] for f in reference.train_fields()} == set(resolved["train"])
    assert {f.key.split(".")[1] for f in reference.task_fields(task)} | {"name"} == \
        set(resolved["task"])
    assert resolved["train"]["steps"] == 7 and resolved["task"]["name"] == task
    same = resolve([nest(parse_sets([f"task.name={task}", "train.steps=7", "train.seed=3"]))],
                   cache_dir=tmp_path / ".cache")
    assert f"# run id {run_id(same)};" in out.splitlines()[0]   # the run `ablate train` makes


def test_config_without_a_task_names_the_choices(capsys):
    assert cli(["config", "--set", "model.pos=rope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task.name: required; valid: " + ", ".join(TASKS.names()) \
        in err


@pytest.mark.parametrize("task", TASKS.names())
def test_list_task_shows_its_full_description_and_every_field(task, capsys):
    assert cli(["list", task]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert reference.task_description(task) in out
    for field in reference.task_fields(task):
        assert field.key in out and ", ".join(field.choices) in out


def test_list_fields_names_model_choices_from_the_registries(capsys):
    assert cli(["list", "--fields"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name, registry in registries.items():
        assert f"model.{name} str " in out and ", ".join(registry.names()) in out
    for field in reference.train_fields():
        assert f"{field.key} {field.type} {reference.fmt_default(field.default)}" in out
    assert "train.schedule str cosine cosine, noam, constant" in out
    for task in TASKS.names():
        assert f"task.name={task}" in out


def test_list_verbose_gives_full_task_descriptions_and_grid_tasks(capsys):
    assert cli(["list", "-v"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for task in TASKS.names():
        assert reference.task_description(task) in out
    line = out.split("lm_extrapolation", 1)[1]
    assert "[task lm;" in line.split("]")[0] + ";" and "None" not in line.split("]")[0]


def test_list_unknown_task_is_one_line_with_did_you_mean(capsys):
    assert cli(["list", "ordr"]) == 2
    assert "unknown task 'ordr' (did you mean 'order'?)" in capsys.readouterr().err


def test_docs_config_md_is_generated_from_the_code():
    # a fresh interpreter runs the very regenerate command: variants that other tests
    # register in this session must not reach the page
    fresh = subprocess.run([sys.executable, "-m", "ablations.reference"], cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                           text=True, check=True).stdout
    assert (ROOT / "docs" / "config.md").read_text() == fresh, \
        f"docs/config.md is stale: regenerate it with `{reference.REGENERATE}`"
