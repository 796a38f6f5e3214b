"""The README's set-up: scripts/venv.sh picks the interpreter (an active venv as it is,
else a project-local .venv, since a PEP 668 system python refuses pip), and install
hints that work outside a checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ablations.config import LOGGER_PACKAGES, LOGGERS, TrainConfig

REPO = Path(__file__).resolve().parents[1]

# Stands in for a system python3: says it is no venv, and `-m venv DIR` makes DIR/bin/python
# (or fails, as Debian's python3 does without python3-venv, leaving a pip-less folder).
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then
    mkdir -p "$3/bin" && printf '#!/bin/sh\\n' > "$3/bin/python" && chmod +x "$3/bin/python"
    [ -z "${FAIL_VENV:-}" ] || exit 1
fi
exit 0
"""


def source_venv(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(REPO / "scripts" / "venv.sh", tmp_path / "scripts")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    return subprocess.run(
        ["bash", "-c", 'set -eu; source scripts/venv.sh; echo "$PY"; python3 -c pass'],
        cwd=tmp_path, env={**base, "PYTHON": str(fake), **env}, capture_output=True, text=True)


def test_a_system_python_gets_a_project_local_venv(tmp_path):
    proc = source_venv(tmp_path)
    venv_python = tmp_path.resolve() / ".venv" / "bin" / "python"
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(venv_python)
    assert "creating" in proc.stderr
    again = source_venv(tmp_path)                 # idempotent: the .venv is reused
    assert again.stdout.splitlines()[0] == str(venv_python) and "creating" not in again.stderr


@pytest.mark.parametrize("active", ["VIRTUAL_ENV", "CONDA_PREFIX"])
def test_an_active_environment_is_used_as_it_is(tmp_path, active):
    proc = source_venv(tmp_path, **{active: str(tmp_path / "env")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(tmp_path / "python3")
    assert not (tmp_path / ".venv").exists()


def test_a_python_without_venv_is_one_clear_error_and_no_half_made_venv(tmp_path):
    proc = source_venv(tmp_path, FAIL_VENV="1")
    assert proc.returncode == 1
    assert "apt-get install python3-venv" in proc.stderr.splitlines()[-1]
    assert not (tmp_path / ".venv").exists()


@pytest.mark.slow
def test_venv_sh_makes_a_real_venv_with_pip(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "venv.sh", tmp_path / "scripts")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    base = getattr(sys, "_base_executable", sys.executable)
    proc = subprocess.run(["bash", "-c", 'source scripts/venv.sh; "$PY" -m pip --version'],
                          cwd=tmp_path, env={**env, "PYTHON": base}, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path.resolve() / ".venv") in proc.stdout


@pytest.mark.parametrize("logger", [name for name, needs in LOGGERS.items() if needs])
def test_a_missing_logger_names_a_pip_install_that_works_anywhere(monkeypatch, logger):
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(Exception, match=f"pip install {LOGGER_PACKAGES[logger]}$"):
        TrainConfig(logger=logger)
