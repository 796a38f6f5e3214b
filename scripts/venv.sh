# Sourced by setup.sh, test.sh and run_all.sh: sets PY to the interpreter the project
# runs in. An active virtual environment (or conda) is used as it is. Otherwise a
# project-local .venv is created and used: a system python3 (Debian/Ubuntu, PEP 668)
# refuses `pip install` outside one, and a user's own site-packages stays untouched.
PY=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] \
   && "$PY" -c "import sys; sys.exit(sys.prefix != sys.base_prefix)"; then
    venv=$(pwd -P)/.venv
    if [ ! -x "$venv/bin/python" ]; then
        echo "setup: creating $venv (no virtual environment is active)" >&2
        # without ensurepip (Debian's python3-venv) venv leaves a .venv with no pip
        if ! "$PY" -m venv "$venv" >&2; then
            rm -rf "$venv"
            echo "setup: '$PY -m venv' failed; install the venv module (Debian/Ubuntu:" \
                 "apt-get install python3-venv) or activate a virtual environment" >&2
            exit 1
        fi
    fi
    PY=$venv/bin/python
    # the same as activating it; PYTHON keeps a nested setup.sh on the same interpreter
    export VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH PYTHON=$PY
fi
