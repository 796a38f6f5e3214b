#!/usr/bin/env bash
# The README's test command: set up what is missing, then the linter and the whole test
# suite, offline. `bash scripts/test.sh -m 'not slow'` is the fast inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh                 # PY: the active venv, or the project's .venv
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -m ruff check --quiet .          # lint first: seconds, and the cheapest failure
# one pytest worker per core; a file's tests stay on one worker, so a module fixture (a
# trained grid many tests read) is built once. `-n 0` runs them in this process.
exec "$PY" -m pytest -q -n auto --dist loadfile "$@"
