#!/usr/bin/env bash
# Installs what the build needs and a fresh Debian machine lacks. Idempotent and quiet when
# everything is already there. The Wasm guest toolchain is handled by build-plugins.sh.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root (or sudo) to run: $*"; return 1; fi
}

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE: install PACKAGE when COMMAND is missing
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

command -v cargo >/dev/null || { say "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
need_pkg nasm nasm   # mozjpeg's SIMD decoder is assembled with nasm
need_pkg cc gcc      # mozjpeg-sys builds libjpeg-turbo's C sources
need_pkg python3 python3
need_pkg unzip unzip # scripts/fetch-models.sh unpacks wheels
need_pkg curl curl     # scripts/with-server.sh waits for /health

need_apt() { # need_apt CHECK-COMMAND PACKAGE...: install the packages when the check fails
    local check="$1"; shift
    bash -c "$check" >/dev/null 2>&1 && return 0
    say "installing $*"
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# scripts/quantize-models.sh makes a venv and renders calibration frames with these fonts.
need_apt 'python3 -c "import ensurepip, venv"' python3-venv
need_apt 'test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf -a -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf' \
    fonts-dejavu-core fonts-liberation
