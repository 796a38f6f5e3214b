#!/usr/bin/env bash
# Installs the project and its dependencies; idempotent, and about 0.3 s when already
# done (run_all.sh and scripts/test.sh call it every time).
# On a machine without a GPU, the CPU build of torch goes first: a bare `torch`
# requirement would pull a multi-GB CUDA build. An installed torch is kept as it is.
# Outside a virtual environment it installs into a project-local .venv (venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

# find_spec answers "is it installed?" without paying for importing it
has() { "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$1') is None)"; }

if ! has torch; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        "$PY" -m pip install -q torch
    else
        "$PY" -m pip install -q "torch==2.13.0"
    fi
fi

# The editable install must be of *this* checkout (a clone elsewhere must not run another
# copy's code), with every dependency present, and redone when pyproject.toml changes:
# a stamp per checkout and interpreter remembers the pyproject.toml it installed.
here=$(pwd -P)
want=$(cat pyproject.toml <(echo "$here") <(command -v "$PY") | cksum | cut -d' ' -f1)
stamp=${XDG_CACHE_HOME:-$HOME/.cache}/transformer-ablations/setup-$(echo "$here" | cksum | cut -d' ' -f1)
installed=$(cd / && "$PY" -c "
import importlib.util as u, os
for name in ('lightning', 'tokenizers', 'datasets', 'pandas', 'matplotlib', 'pytest', 'xdist',
             'ruff', 'submitit'):
    assert u.find_spec(name), name
print(os.path.dirname(os.path.dirname(os.path.realpath(u.find_spec('ablations').origin))))
" 2>/dev/null || true)
if [ "$installed" != "$here" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$PY" -m pip install -q -e ".[dev,slurm]"
    mkdir -p "$(dirname "$stamp")" && echo "$want" > "$stamp"
fi
