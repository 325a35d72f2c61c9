#!/usr/bin/env bash
# Run the test suite on the newest releases of everything: a fresh virtual environment
# with `pip install -e ".[test]"` and no constraints. It tells whether updating
# constraints.txt (scripts/update-constraints.sh) would keep CI green.
# Usage: bash scripts/test-newest.sh [pytest arguments]   (default: the whole suite)
# PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
"${PYTHON:-python3}" -m venv "$workdir/venv"
"$workdir/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$workdir/venv/bin/python" -m pip install --disable-pip-version-check -e ".[test]"
echo "test-newest: installed"
"$workdir/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable

# The venv first on the PATH, so the suite's subprocesses (vibetuner, uvicorn) use it too.
export PATH="$workdir/venv/bin:$PATH"
"$workdir/venv/bin/python" -m mypy
"$workdir/venv/bin/python" -m pytest -p no:cacheprovider "$@"
