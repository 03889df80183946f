#!/usr/bin/env bash
# Makes the two base images the Dockerfile needs on a machine that reaches no image registry,
# from Debian's own mirror (what apt uses here):
#   localhost/streamhost-runtime-base:bookworm   debootstrap --variant=minbase bookworm
#   localhost/streamhost-build-base:bookworm     the same, plus this machine's Rust toolchain
#                                                (~/.rustup's stable and ~/.cargo/bin), since
#                                                rustup's own servers are out of reach
# The build base is made only with --with-build-base (it copies ~1.6 GB). Then:
#   make image BUILD_BASE=localhost/streamhost-build-base:bookworm \
#              RUNTIME_BASE=localhost/streamhost-runtime-base:bookworm
# Needs root, debootstrap, buildah and podman (scripts/setup.sh does not install them: only `make image`
# needs them). Idempotent: an existing image is kept.
set -euo pipefail
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RUNTIME=localhost/streamhost-runtime-base:bookworm
BUILD=localhost/streamhost-build-base:bookworm
say() { printf 'image-bases: %s\n' "$*" >&2; }
for tool in debootstrap buildah podman; do
    command -v "$tool" >/dev/null || { say "needs $tool (apt-get install $tool)"; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! buildah inspect --type image "$RUNTIME" >/dev/null 2>&1; then
    say "bootstrapping Debian bookworm (minbase) from $MIRROR"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -c . | podman import - "$RUNTIME" >/dev/null
    say "made $RUNTIME"
fi
if [[ "${1:-}" == "--with-build-base" ]] && ! buildah inspect --type image "$BUILD" >/dev/null 2>&1; then
    toolchain="$(rustc --print sysroot)"
    say "adding the Rust toolchain $toolchain to $BUILD"
    ctr="$(buildah from "$RUNTIME")"
    mnt="$(buildah mount "$ctr")"
    mkdir -p "$mnt/usr/local/rust"
    cp -a "$toolchain/." "$mnt/usr/local/rust/"
    for extra in wasm-component-ld; do
        [[ -x "$HOME/.cargo/bin/$extra" ]] && cp "$HOME/.cargo/bin/$extra" "$mnt/usr/local/rust/bin/" || true
    done
    # Certificate authorities this machine added locally (a TLS-inspecting egress proxy signs
    # crates.io, PyPI and npm with its own): the build stage's `apt-get install ca-certificates`
    # folds them into its bundle, so cargo, pip and npm inside trust what they trust here.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        mkdir -p "$mnt/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$mnt/usr/local/share/ca-certificates/"
    fi
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit "$ctr" "$BUILD" >/dev/null
    buildah rm "$ctr" >/dev/null
    say "made $BUILD"
fi
