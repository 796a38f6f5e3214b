"""`ablate`: one console script, one subcommand per user job.

Each subcommand lives in its own module exposing `add_arguments(parser)` and
`main(args) -> int`; modules are imported only when their command runs, so
`ablate list` and bad-input errors come back fast.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from transformer.validation import ConfigError

from . import procs

COMMANDS = {
    "list": ("ablations.listing", "variants, tasks and grids; a task's fields (list TASK, "
                                  "--fields)"),
    "config": ("ablations.config_command",
               "print a run's resolved config, every default explicit (--task, --set)"),
    "train": ("ablations.training.run", "train one run into a results folder"),
    "run": ("ablations.grid.runner", "run an ablation grid (resumable, parallel, SLURM)"),
    "replicate": ("ablations.grid.replicate", "rerun the cells a grid's verdicts read on "
                  "held-out seeds and a second corpus (the grid's replicate:)"),
    "report": ("ablations.report.command",
               "aggregate stored results into tables, plots and verdicts"),
    "bench": ("benchmarks.cli", "throughput / KV-cache / scaling benchmarks"),
    "explore": ("ablations.explore.command",
                "an interactive page comparing a grid's trained variants (static or --serve)"),
    "test": ("ablations.conformance",
             "the conformance tests on a plugin's variants (from a checkout)"),
    "_run_one": ("ablations.training.run", None),   # internal: the idempotent per-run entry point
    "_evaluate": ("ablations.posthoc.compute", None),  # internal: post-hoc evaluations
    "_worker": ("ablations.training.fork_server", None),    # internal: a slot's persistent worker
}


class Parser(argparse.ArgumentParser):
    def error(self, message):                      # argparse's own errors: one line, exit 2
        self.exit(2, f"ablate: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = Parser(prog="ablate", description="Transformer ablation suite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (_, help_) in COMMANDS.items():
        if help_ is not None:
            sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)            # prints help / a one-line error
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = Parser(prog=f"ablate {name}", description=COMMANDS[name][1])
    adder = getattr(module, "add_one_arguments" if name == "_run_one" else "add_arguments")
    adder(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    runner = getattr(module, "main_one" if name == "_run_one" else "main")
    if name in ("run", "replicate", "report", "explore"):
        # SIGTERM unwinds like Ctrl-C: the pool's clean-up stops every child it started
        signal.signal(signal.SIGTERM, procs.on_sigterm)
    try:
        code = runner(args)
        procs.check_terminated()        # a SIGTERM whose exception Python dropped
        return code
    except ConfigError as e:
        print(f"ablate {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        resume = ": rerun to resume" if name in ("run", "replicate", "train") else ""
        print(f"ablate {name}: interrupted{resume}", file=sys.stderr)
        return 143 if isinstance(e, procs.Terminated) else 130
    except OSError as e:
        if name not in ("run", "report"):
            raise
        # read-only, full or forbidden: which path and why, never a traceback
        where = f"{e.filename}: " if e.filename is not None else ""
        print(f"ablate {name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1


