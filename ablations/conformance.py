"""`ablate test --plugin MODULE`: the conformance tests (tests/test_model.py, parametrized
over the registries) on the variants a plugin registers: causal leakage, KV-cache
equality, reload, training, positions past max_len.

The tests live in the checkout's tests/ folder, which is not installed with the package,
so this command works from a checkout (`pip install -e .`); elsewhere it says so.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from transformer.config import ConfigError
from .plugins import add_plugin_option

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "test_model.py"


def add_arguments(p) -> None:
    add_plugin_option(p, required=True)
    p.add_argument("--all", action="store_true",
                   help="every registered variant, not only the plugin's")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER,
                   help="passed on to pytest, e.g. -x or -v")


def main(args) -> int:
    if not TESTS.is_file():
        raise ConfigError("ablate test", f"needs a checkout of the project ({TESTS} is "
                          "missing: tests/ is not installed); clone it and pip install -e .")
    from transformer import registries

    from .grid.children import plugin_roots
    from .plugins import import_modules
    before = {kind: set(reg.names()) for kind, reg in registries.items()}
    names = import_modules(args.plugin)
    new = sorted({n for kind, reg in registries.items() for n in reg.names()
                  if n not in before[kind]})
    if not new and not args.all:
        raise ConfigError("--plugin", f"{', '.join(args.plugin)} registers no model variant "
                          f"(kinds: {', '.join(registries)}); nothing to test")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        dict.fromkeys(filter(None, [*plugin_roots(names), str(REPO),
                                    os.environ.get("PYTHONPATH", "")]))))
    cmd = [sys.executable, "-m", "pytest", str(TESTS), "-q"]
    for name in names:                    # pytest imports them before collecting the tests
        cmd += ["-p", name]
    if not args.all:
        cmd += ["-k", " or ".join(new)]
    print(f"ablate test: {', '.join(new) or 'every variant'} ({' '.join(cmd[3:])})",
          file=sys.stderr, flush=True)
    return subprocess.call(cmd + args.pytest_args, cwd=REPO, env=env)
