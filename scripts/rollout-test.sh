#!/usr/bin/env bash
# A rolling update on real parts (`make rollout-test`, part of `make test`): Debian's nginx in
# front of ROLLOUT_INSTANCES `streamhost serve` processes, the shipped Rust and Python clients
# streaming through it with --reconnect, and the instances restarted one by one as a rollout does
# (SIGTERM, wait for the exit, start again on the same port, wait for /ready). Passes only if
# every client's report says: each frame sent was answered exactly once or abandoned by a close
# 1001 (and none unanswered, none answered twice), every client reconnected, the longest gap
# between replies stayed under ROLLOUT_MAX_GAP_MS, and nginx logged nothing worse than [error]
# (its connect failures to a stopped instance are expected).
#
# Why a script and not a cargo test: it runs three binaries of two packages (a test can only
# name its own package's) plus nginx and a Python venv; the make target builds them first.
# Usage: scripts/rollout-test.sh   (env: STREAMHOST_BIN, STREAM_CLIENT_BIN, PLUGIN_DIR,
#        CLIENT_PYTHON, ROLLOUT_INSTANCES=3, ROLLOUT_FRAMES=1000, ROLLOUT_FPS=25,
#        ROLLOUT_MAX_GAP_MS=5000, ROLLOUT_REPORT=FILE to keep the per-client JSON lines)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${STREAMHOST_BIN:-$REPO/target/debug/streamhost}"
CLIENT="${STREAM_CLIENT_BIN:-$REPO/target/debug/stream-client}"
PLUGINS="${PLUGIN_DIR:-$REPO/target/plugins}"
PY="${CLIENT_PYTHON:-$REPO/examples/python/.venv/bin/python}"
NGINX="${NGINX:-/usr/sbin/nginx}"
N="${ROLLOUT_INSTANCES:-3}"
FRAMES="${ROLLOUT_FRAMES:-1000}"
FPS="${ROLLOUT_FPS:-25}"
MAX_GAP_MS="${ROLLOUT_MAX_GAP_MS:-5000}"
RUST_CLIENTS=3
PY_CLIENTS=2

say() { echo "rollout-test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
for f in "$BIN" "$CLIENT" "$PY" "$NGINX"; do [[ -x "$f" ]] || fail "missing $f (make rollout-test builds it)"; done
[[ -f "$PLUGINS/frame_info.wasm" ]] || fail "no $PLUGINS/frame_info.wasm (make plugins)"

T="$(mktemp -d /tmp/streamhost-rollout.XXXXXX)"
declare -a SERVER_PIDS=() PORTS=() CLIENT_PIDS=()
NGINX_PID=
cleanup() {
    local pid
    for pid in "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}" $NGINX_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}" $NGINX_PID; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_ROLLOUT_DIR:-0}" == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# Ephemeral ports: bound by the kernel, then released for the servers to take.
free_ports() {
    python3 -c 'import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
read -r -a PORTS <<<"$(free_ports $((N + 1)))"
PROXY_PORT="${PORTS[$N]}"

mkdir -p "$T/pipelines" "$T/tmp"
cp "$REPO/pipelines/frame_info.toml" "$T/pipelines/"

start_instance() { # start_instance I: serve on PORTS[I], log to $T/instance-I.log (appended)
    local i="$1"
    STREAMHOST_SHUTDOWN_GRACE_SECS=10 RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:${PORTS[$i]}" \
        --pipelines "$T/pipelines" --plugins "$PLUGINS" >>"$T/instance-$i.log" 2>&1 &
    SERVER_PIDS[$i]=$!
}
wait_ready() { # wait_ready I: until /ready answers 200 (60 s)
    local i="$1"
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:${PORTS[$i]}/ready" >/dev/null 2>&1 && return 0
        kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || { tail -5 "$T/instance-$i.log" >&2; fail "instance $i exited"; }
        sleep 0.2
    done
    fail "instance $i not ready after 60 s"
}

for ((i = 0; i < N; i++)); do start_instance "$i"; done
for ((i = 0; i < N; i++)); do wait_ready "$i"; done

# nginx as a child in the foreground, everything under $T. max_fails=1 fail_timeout=2s: an
# instance that refused (stopped) or answered 503 (draining) is skipped for 2 s, and the
# connect that met it is tried on the next one (proxy_next_upstream).
{
    [[ $EUID -eq 0 ]] && echo "user root;"
    cat <<EOF
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log info;
events { worker_connections 512; }
http {
    access_log $T/nginx-access.log;
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    upstream streamhost {
$(for ((i = 0; i < N; i++)); do echo "        server 127.0.0.1:${PORTS[$i]} max_fails=1 fail_timeout=2s;"; done)
    }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://streamhost;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries $N;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            proxy_send_timeout 60s;
        }
    }
}
EOF
} >"$T/nginx.conf"
"$NGINX" -t -q -e "$T/nginx-error.log" -c "$T/nginx.conf" -p "$T" || fail "nginx -t refused $T/nginx.conf"
"$NGINX" -e "$T/nginx-error.log" -c "$T/nginx.conf" -p "$T" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PROXY_PORT/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$PROXY_PORT/ready" >/dev/null || fail "nginx does not proxy /ready; see $T/nginx-error.log"

URL="ws://127.0.0.1:$PROXY_PORT/ws/video/stream"
FRAME="$REPO/examples/frames/frame.jpg"
[[ -f "$FRAME" ]] || fail "no $FRAME"
say "$N instances on ${PORTS[*]:0:$N}, nginx on $PROXY_PORT; $RUST_CLIENTS Rust + $PY_CLIENTS Python clients, $FRAMES frames at $FPS fps each"
for ((c = 0; c < RUST_CLIENTS; c++)); do
    "$CLIENT" "$FRAME" --url "$URL" --pipeline frame_info --fps "$FPS" --frames "$FRAMES" \
        --reconnect --quiet --json "$T/rust-$c.json" >"$T/rust-$c.out" 2>&1 &
    CLIENT_PIDS+=($!)
done
for ((c = 0; c < PY_CLIENTS; c++)); do
    "$PY" "$REPO/examples/python/stream_client.py" "$FRAME" --url "$URL" --pipeline frame_info \
        --fps "$FPS" --frames "$FRAMES" --timeout 15 --reconnect --json "$T/python-$c.json" \
        >"$T/python-$c.out" 2>&1 &
    CLIENT_PIDS+=($!)
done

sleep 3
started=$SECONDS
for ((i = 0; i < N; i++)); do
    say "restarting instance $i (port ${PORTS[$i]})"
    kill -TERM "${SERVER_PIDS[$i]}"
    code=0
    wait "${SERVER_PIDS[$i]}" || code=$?
    [[ $code -eq 0 ]] || { tail -5 "$T/instance-$i.log" >&2; fail "instance $i exited $code after SIGTERM"; }
    start_instance "$i"
    wait_ready "$i"
    sleep 2  # let nginx's fail_timeout pass and clients spread before the next one goes
done
say "rollout done in $((SECONDS - started)) s"
show_clients() { local f; for f in "$T"/*.out; do say "--- $f"; tail -5 "$f" >&2; done; }
for pid in "${CLIENT_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { show_clients; fail "a client ended before the rollout did (its output is above)"; }
done

client_fail=0
for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" || client_fail=1; done
CLIENT_PIDS=()
if [[ $client_fail -ne 0 ]]; then
    show_clients
    fail "a client exited non-zero"
fi

bad_nginx="$(grep -E '\[(emerg|alert|crit)\]' "$T/nginx-error.log" || true)"
[[ -z "$bad_nginx" ]] || fail "nginx: $bad_nginx"
nginx_errors="$(grep -c '\[error\]' "$T/nginx-error.log" || true)"

python3 - "$FRAMES" "$MAX_GAP_MS" "$nginx_errors" "${ROLLOUT_REPORT:-}" "$T"/rust-*.json "$T"/python-*.json <<'EOF'
import json, sys
frames, max_gap, nginx_errors, report = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
problems, rows = [], []
for path in sys.argv[5:]:
    r = json.load(open(path))
    name = path.rsplit("/", 1)[-1][:-5]
    rows.append(f"{name:9} sent {r['sent']:5} answered {r['answered']:5} abandoned_by_1001 "
                f"{r['abandoned_by_1001']:2} unanswered {r['unanswered']} unmatched {r['unmatched']} "
                f"reconnects {r['reconnects']} failed_connects {r['failed_connects']} "
                f"longest_gap {r['longest_gap_ms']:.0f} ms")
    if r["sent"] != frames:
        problems.append(f"{name}: sent {r['sent']}, not {frames}")
    if r["sent"] != r["answered"] + r["abandoned_by_1001"] + r["unanswered"]:
        problems.append(f"{name}: counts do not add up")
    for key in ("unanswered", "unmatched"):
        if r[key]:
            problems.append(f"{name}: {key} {r[key]}")
    if r["reconnects"] < 1:
        problems.append(f"{name}: never reconnected")
    if r["longest_gap_ms"] > max_gap:
        problems.append(f"{name}: longest gap {r['longest_gap_ms']:.0f} ms > {max_gap:.0f}")
    if r.get("fatal") or r.get("problem"):
        problems.append(f"{name}: {r.get('fatal')} {r.get('problem')}")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps(dict(r, name=name)) + "\n")
print("\n".join(rows))
print(f"nginx [error] lines (connects to a stopped instance): {nginx_errors}")
if problems:
    print("rollout-test: FAIL:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print("rollout-test: PASS")
EOF
