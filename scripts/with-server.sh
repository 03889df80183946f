#!/usr/bin/env bash
# Runs a command against a freshly started release server, then stops it (SIGTERM, graceful).
#   scripts/with-server.sh HOST:PORT COMMAND...
# The server serves pipelines/ with target/plugins and models/; its JSON log goes to
# target/bench-server.log. Used by `make accuracy` and `make bench`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDR="$1"; shift
BIN="$REPO/target/release/streamhost"
[[ -x "$BIN" ]] || { echo "with-server: build first (make build)" >&2; exit 1; }
LOG="$REPO/target/bench-server.log"
RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve --listen "$ADDR" --pipelines "$REPO/pipelines" \
    --plugins "$REPO/target/plugins" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
# Up to 2 minutes: on a first start with int8 models the int8 gate compares both model sets on
# its held-out frames before the server listens (cached afterwards).
for _ in $(seq 1 600); do
    if curl -fsS "http://$ADDR/health" >/dev/null 2>&1; then break; fi
    kill -0 $PID 2>/dev/null || { echo "with-server: server exited; see $LOG" >&2; tail -5 "$LOG" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "http://$ADDR/health" >/dev/null || { echo "with-server: server not healthy; see $LOG" >&2; exit 1; }
STREAMHOST_SERVER_PID=$PID "$@"
