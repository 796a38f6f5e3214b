#!/usr/bin/env bash
# Installs the project and its dependencies; idempotent and fast when already done.
# On a machine without a GPU, install the CPU build of torch first: a bare `torch`
# requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        "$PY" -m pip install -q torch
    else
        "$PY" -m pip install -q "torch==2.13.0"
    fi
fi
# editable install of *this* checkout (a clone elsewhere must not run another copy's code)
here=$(pwd -P)
installed=$(cd / && "$PY" -c "import ablations, os; print(os.path.dirname(os.path.dirname(os.path.realpath(ablations.__file__))))" 2>/dev/null || true)
if [ "$installed" != "$here" ] || ! "$PY" -c "import lightning, tokenizers, datasets, pandas, pytest, submitit" 2>/dev/null; then
    "$PY" -m pip install -q -e ".[dev,slurm]"
fi
