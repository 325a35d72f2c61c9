#!/usr/bin/env bash
# Run the test suite on the lowest versions pyproject.toml allows: a fresh virtual
# environment where every direct dependency (and every package of the [test] extra) is
# installed at its lower bound (`uv pip install --resolution lowest-direct`). A failure
# here means a lower bound in pyproject.toml is too low: raise it.
# Usage: bash scripts/test-lowest.sh [pytest arguments]   (default: the whole suite)
# PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
"${PYTHON:-python3}" -m venv "$workdir/venv"
if command -v uv >/dev/null 2>&1; then
    uv=uv
else
    # uv (from PyPI) does the lowest-version resolution; it lives beside the venv, not in it.
    "${PYTHON:-python3}" -m venv "$workdir/tools"
    "$workdir/tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
    uv="$workdir/tools/bin/uv"
fi
"$uv" pip install --python "$workdir/venv/bin/python" --resolution lowest-direct -e ".[test]"
echo "test-lowest: installed"
"$uv" pip freeze --python "$workdir/venv/bin/python" --exclude-editable

# The venv first on the PATH, so the suite's subprocesses (vibetuner, uvicorn) use it too.
export PATH="$workdir/venv/bin:$PATH"
"$workdir/venv/bin/python" -m pytest -p no:cacheprovider "$@"
