#!/usr/bin/env bash
# Load and soak numbers for BENCHMARKS.md, against a running release server (run it through
# scripts/with-server.sh, which sets STREAMHOST_SERVER_PID; `make load` does both).
#   scripts/load-report.sh HOST:PORT
# Each scenario runs the repository's load generator (examples/load-gen); its JSON reports go to
# target/load/. Prints one markdown table: frames, drops, errors, latency, invariant violations,
# sessions left open and the server's resident memory (before, peak during, after).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDR="$1"
LOAD="$REPO/target/release/streamhost-load"
OUT="$REPO/target/load"
PID="${STREAMHOST_SERVER_PID:?run through scripts/with-server.sh}"
[[ -x "$LOAD" ]] || { echo "load-report: build first (cargo build --release -p streamhost-load)" >&2; exit 1; }
mkdir -p "$OUT"
FRAME="$REPO/examples/frames/frame.jpg"

rss_mib() { awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$PID/status"; }
sessions() { curl -fsS "http://$ADDR/metrics" | awk '$1 == "stream_sessions_active" { print $2 }'; }

# scenario NAME ARGS...: runs the load generator while sampling the server's RSS.
scenario() {
    local name="$1"; shift
    local before peak=0 now sampler
    before="$(rss_mib)"
    ( while kill -0 "$PID" 2>/dev/null; do rss_mib; sleep 0.5; done ) >"$OUT/$name.rss" &
    sampler=$!
    "$LOAD" --url "ws://$ADDR" --json "$OUT/$name.json" "$@" >"$OUT/$name.txt" 2>&1 || true
    for _ in $(seq 1 50); do [[ "$(sessions)" == 0 ]] && break; sleep 0.2; done
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak="$(sort -n "$OUT/$name.rss" | tail -1)"
    now="$(rss_mib)"
    python3 - "$OUT/$name.json" "$name" "$before" "${peak:-0}" "$now" "$(sessions)" "$*" <<'PY'
import json, sys
path, name, before, peak, after, left, args = sys.argv[1:]
r = json.load(open(path))
t = r["totals"]
lat = t.get("latency_ms") or {}
print(f"| {name} | `{args}` | {t['frames_sent']} | {t['results']} | {t['dropped']} | {t['errors']} "
      f"| {t['result_fps']:.1f} | {lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} "
      f"| {t['connections_opened']} | {t['violations_total']} | {left} | {before} / {peak} / {after} |")
PY
}

echo "| scenario | load-gen arguments | sent | results | dropped | errors | results/s | p50 / p99 ms | connections | violations | sessions left | server RSS MiB before / peak / after |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
scenario steady --pipeline frame_info --frames "$FRAME" --sessions 50 --fps 15 --duration 20
scenario flood --pipeline frame_info --frames "$FRAME" --sessions 200 --flood --window 32 --duration 10
scenario idle_1000 --pipeline frame_info --frames "$FRAME" --sessions 1000 --fps 0.5 --duration 20
scenario soak_churn --pipeline frame_stats --frames "$FRAME" --sessions 100 --fps 10 --churn-ms 500 --duration 60
scenario ocr --pipeline ocr --frames "$FRAME" --sessions 4 --duration 20
