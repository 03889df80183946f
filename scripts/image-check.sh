#!/usr/bin/env bash
# Checks a built image the way this machine allows (its OCI runtime cannot start containers:
# crun fails to set rlimits here, so `podman run` is out): the image's own files, run from its
# root filesystem mounted READ-ONLY, through chroot as the image's non-root user, in a private
# mount namespace with a fresh /proc and a tmpfs /tmp (what Kubernetes gives the pod):
#   1. the image runs as uid 10001 with `streamhost serve --config ...` as its command;
#   2. it holds no compiler or package-build toolchain;
#   3. `streamhost check` loads every shipped pipeline ready from the image's config;
#   4. `streamhost serve` answers /health and /ready, and a real WebSocket client streams a frame
#      through `frame_info` and gets its reply;
#   5. nothing was written to the root filesystem (it was read-only throughout).
# Usage: scripts/image-check.sh IMAGE   (needs root, buildah, unshare; curl and python3)
set -euo pipefail
IMAGE="${1:?usage: image-check.sh IMAGE}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'image-check: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

user="$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")"
[[ "$user" == "10001:10001" ]] || fail "runs as '$user', not 10001:10001"
cmd="$(buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$IMAGE")"
[[ "$cmd" == '[/usr/local/bin/streamhost] [serve --config /etc/streamhost/streamhost.toml]' ]] ||
    fail "entrypoint and command are $cmd"
say "1. user 10001:10001, command $cmd"

ctr="$(buildah from "$IMAGE")"
mnt="$(buildah mount "$ctr")"
cleanup() { buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
for tool in cc gcc g++ c++ clang rustc cargo make nasm; do
    for dir in usr/bin usr/local/bin bin; do
        [[ ! -e "$mnt/$dir/$tool" ]] || fail "the runtime image has a toolchain: /$dir/$tool"
    done
done
say "2. no compiler or build tool (cc, gcc, clang, rustc, cargo, make, nasm)"
before="$(find "$mnt" -xdev -newer "$mnt/usr/local/bin/streamhost" 2>/dev/null | wc -l)"

bash "$REPO/scripts/client-venv.sh"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
# Everything below runs in a private mount namespace: the image's root bound read-only, /proc
# and a tmpfs /tmp on top, then chroot as uid 10001.
unshare --mount --propagation private bash -s "$mnt" "$port" "$log" "$REPO" <<'INNER'
set -euo pipefail
mnt="$1"; port="$2"; log="$3"; repo="$4"
root="$(mktemp -d)"
mount --bind "$mnt" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o size=64m tmpfs "$root/tmp"
as_user() { chroot --userspec=10001:10001 "$root" "$@"; }
if as_user touch /etc/streamhost/written 2>/dev/null; then echo "image-check: FAILED: the root is writable" >&2; exit 1; fi
as_user /usr/local/bin/streamhost check --config /etc/streamhost/streamhost.toml >"$log.check" 2>&1 ||
    { cat "$log.check" >&2; echo "image-check: FAILED: streamhost check" >&2; exit 1; }
echo "image-check: 3. streamhost check:" >&2; sed 's/^/    /' "$log.check" >&2
STREAMHOST_LISTEN="127.0.0.1:$port" as_user /usr/local/bin/streamhost serve --config /etc/streamhost/streamhost.toml >"$log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "image-check: FAILED: the server exited" >&2; exit 1; }
    sleep 0.2
done
curl -sf "http://127.0.0.1:$port/health" >&2 && echo >&2
curl -sf "http://127.0.0.1:$port/ready" >&2 && echo >&2 || { echo "image-check: FAILED: /ready" >&2; kill "$server"; exit 1; }
"$repo/examples/python/.venv/bin/python" "$repo/examples/python/stream_client.py" \
    --url "ws://127.0.0.1:$port/ws/video/stream" --pipeline frame_info >"$log.client" 2>&1 ||
    { cat "$log.client" >&2; echo "image-check: FAILED: the stream client" >&2; kill "$server"; exit 1; }
echo "image-check: 4. served /health, /ready and a frame to frame_info:" >&2; sed 's/^/    /' "$log.client" >&2
kill -TERM "$server"; wait "$server" || true
INNER
after="$(find "$mnt" -xdev -newer "$mnt/usr/local/bin/streamhost" 2>/dev/null | wc -l)"
[[ "$before" == "$after" ]] || fail "files changed under the root filesystem"
say "5. the root filesystem stayed read-only and unchanged"
say "all checks passed for $IMAGE"
