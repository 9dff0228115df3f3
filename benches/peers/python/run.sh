#!/usr/bin/env bash
# Times the shapes of ../benches/overhead.rs with the Python libraries async-dag 0.3.1
# (Python 3.12+) and taskmap 0.0.6 (Python 3.9: its run_async breaks on 3.10+), each in its own
# virtual environment under ./.venv-*, created with pyenv's interpreters.
# Usage: ./run.sh [sizes...]   (default: 1000 10000; TASKMAP_BUDGET=seconds caps taskmap)
set -euo pipefail
cd "$(dirname "$0")"
PYENV_ROOT="${PYENV_ROOT:-/root/.pyenv}"

venv() { # venv DIR PYTHON_PREFIX PACKAGE
    local dir=$1 want=$2 pkg=$3 py
    py=$(ls -d "$PYENV_ROOT"/versions/"$want"* 2>/dev/null | sort -V | tail -1)/bin/python
    if [ ! -x "$py" ]; then
        echo "Python $want is not installed under $PYENV_ROOT (pyenv install $want): skipping $pkg" >&2
        return 1
    fi
    [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$pkg"
}

if venv .venv-async-dag 3.12 async-dag==0.3.1; then
    .venv-async-dag/bin/python bench.py async-dag "$@"
fi
if venv .venv-taskmap 3.9 taskmap==0.0.6; then
    .venv-taskmap/bin/python bench.py taskmap "$@"
fi
