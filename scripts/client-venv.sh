#!/usr/bin/env bash
# Creates the example clients' virtual environment (examples/python/.venv by default) with the
# exact pins of examples/python/requirements.txt; stock Debian's python3 refuses `pip install`
# outside one. Idempotent: a stamp of the requirements' hash says whether it is current.
# Used by `make demo` and by tests/build.rs (the Python client's end-to-end test).
# Usage: scripts/client-venv.sh [VENV_DIR]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/examples/python/.venv}"
REQ="$REPO/examples/python/requirements.txt"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" == "$want" ]]; then
    exit 0
fi
rm -rf "$VENV"
python3 -m venv "$VENV" || { echo "client-venv: python3 -m venv failed (scripts/setup.sh installs python3-venv)" >&2; exit 1; }
timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r "$REQ" \
    || { echo "client-venv: pip install -r $REQ failed" >&2; exit 1; }
echo "$want" > "$VENV/.requirements.sha256"
