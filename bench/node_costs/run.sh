#!/usr/bin/env bash
# `make node-costs`: what a Wasm node costs by language (BENCHMARKS.md, "Node costs by language").
#   bench/node_costs/run.sh [INSTANCES]      (default 100)
# 1. makes the same-work node in Rust, Python and JavaScript with `streamhost new-node` and builds
#    them (build.sh) into target/node-costs;
# 2. runs host/examples/node_costs.rs: load, instantiate, per-call and per-instance memory, in one
#    process, with ratios against the Rust node;
# 3. starts the release server on those nodes (the pipelines new-node wrote, plus a decode-only
#    baseline) and opens INSTANCES sessions per pipeline with the load generator
#    (examples/load-gen), each sending 64x48 frames (then the Rust node again with 640x480
#    frames), reading the server's VmRSS and Pss while they are open.
# Prints markdown tables and the CPU; run on a quiet machine and compare rows of one run only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
N="${1:-100}"
OUT="$REPO/target/node-costs"
ADDR="${NODE_COSTS_ADDR:-127.0.0.1:18471}"
cd "$REPO"

cargo build --release --quiet -p streamhost --bin streamhost --example node_costs
cargo build --release --quiet -p streamhost-load
bash "$HERE/build.sh" "$OUT"

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p') model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) cores;" \
    "AVX-512: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)," \
    "VNNI: $(grep -qwE 'avx512_vnni|avx_vnni' /proc/cpuinfo && echo yes || echo no); $(git rev-parse --short HEAD)"
echo
"$REPO/target/release/examples/node_costs" "$OUT" "$N"
echo

# The server part: the pipelines new-node wrote (decode, then the node) and decode alone as the
# baseline.
PIPES="$(mktemp -d)"
trap 'rm -rf "$PIPES"' EXIT
cp "$OUT"/scaffold/pipelines/bench_*.toml "$PIPES/"
printf 'id = "decode_only"\ndescription = "node-costs baseline"\n\n[[nodes]]\nid = "decode"\nkind = "jpeg_decode"\n' \
    >"$PIPES/decode_only.toml"
LOG="$OUT/server.log"
RUST_LOG=warn "$REPO/target/release/streamhost" serve --listen "$ADDR" --pipelines "$PIPES" \
    --plugins "$OUT" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$PIPES"' EXIT
for _ in $(seq 1 900); do
    curl -fsS "http://$ADDR/health" >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || { echo "server exited; see $LOG" >&2; tail -5 "$LOG" >&2; exit 1; }
    sleep 0.2
done

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/$2"; }
sample() { echo "$(kib VmRSS status) $(kib Pss smaps_rollup) $(kib Private_Dirty smaps_rollup)"; }
echo "| pipeline | frames | server VmRSS MiB before / with $N sessions | + KiB/session | Pss MiB with $N sessions | Private_Dirty + KiB/session | results |"
echo "|---|---|---|---|---|---|---|"
# The last row repeats the Rust node with 640x480 frames (what `make load` sends): the frame's
# copy stays in each guest's linear memory.
for run in decode_only:small bench_rust:small bench_python:small bench_js:small bench_rust:vga; do
    p="${run%%:*}"
    frame="$HERE/frame_64x48.jpg"
    [[ "${run#*:}" == vga ]] && frame="$REPO/examples/frames/frame.jpg"
    sleep 1
    read -r rss0 pss0 pd0 <<<"$(sample)"
    "$REPO/target/release/streamhost-load" --url "ws://$ADDR" --pipeline "$p" \
        --frames "$frame" --sessions "$N" --fps 1 --duration 5 \
        --json "$OUT/load-$run.json" >"$OUT/load-$run.txt" 2>&1 &
    load=$!
    best="0 0 0"
    while kill -0 $load 2>/dev/null; do
        s="$(sample)"
        [[ "${s%% *}" -gt "${best%% *}" ]] && best="$s"
        sleep 0.25
    done
    wait $load || true
    read -r rss pss pd <<<"$best"
    results="$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["totals"]
print("%d/%d answered, %d errors" % (t["results"], t["frames_sent"], t["errors"]))' "$OUT/load-$run.json")"
    echo "| $p | $(basename "$frame") | $((rss0 / 1024)) / $((rss / 1024)) | $(((rss - rss0) / N)) | $((pss / 1024)) | $(((pd - pd0) / N)) | $results |"
done
