"""Command-line forms shared by the commands: `--set` takes several KEY=VALUE at once
and may be repeated, the same in every command that has it."""
from __future__ import annotations

import importlib

import pytest

from ablations.cli import COMMANDS, Parser

# every command whose arguments include --set
SET_COMMANDS = ["train", "run"]


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
