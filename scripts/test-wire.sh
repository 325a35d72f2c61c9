#!/usr/bin/env bash
# Run the database-facing test suites through PyMongo's real client against a
# MongoDB-wire-compatible server (mongoeco, in memory) on 127.0.0.1. No test may skip.
# The server needs Python 3.13+: a virtual environment for it is built on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

WIRE_VENV="${WIRE_VENV:-.wire-venv}"
if [ ! -x "$WIRE_VENV/bin/python" ]; then
    if command -v pyenv >/dev/null 2>&1 && pyenv versions --bare | grep -qx "3.13.0"; then
        PYENV_VERSION=3.13.0 python3.13 -m venv "$WIRE_VENV"
    elif command -v python3.13 >/dev/null 2>&1; then
        python3.13 -m venv "$WIRE_VENV"
    else
        echo "test-wire: Python 3.13 is needed for the wire server (mongoeco); none was found" >&2
        exit 2
    fi
    "$WIRE_VENV/bin/python" -m pip install --quiet "mongoeco==4.11.0" "pymongo>=4.13"
fi

workdir="$(mktemp -d)"
"$WIRE_VENV/bin/python" scripts/wire_server.py --uri-file "$workdir/uri" > "$workdir/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$workdir"; }
trap cleanup EXIT
for _ in $(seq 100); do
    [ -s "$workdir/uri" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$workdir/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$workdir/uri" ] || { echo "test-wire: the wire server did not start" >&2; cat "$workdir/server.log" >&2; exit 1; }

export TEST_MONGODB_URL="$(cat "$workdir/uri")"
echo "test-wire: running against $TEST_MONGODB_URL"
python -m pytest -p no:cacheprovider -rs \
    tests/core tests/auth tests/blobs tests/robustness tests/jobs tests/admin tests/ratelimit tests/realtime tests/observability \
    tests/scaffold/test_plugin_fixtures.py tests/scaffold/test_generated_projects.py \
    "$@" | tee "$workdir/pytest.log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || exit "$status"
if grep -Eq "^SKIPPED|[0-9]+ skipped" "$workdir/pytest.log"; then
    echo "test-wire: tests were skipped; on the wire server every test must run" >&2
    exit 1
fi
