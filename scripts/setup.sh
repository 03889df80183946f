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
need_apt() { # need_apt CHECK-COMMAND PACKAGE...: install the packages when the check fails
    local check="$1"; shift
    bash -c "$check" >/dev/null 2>&1 && return 0
    say "installing $*"
    if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need_pkg() { need_apt "command -v $1" "$2"; } # need_pkg COMMAND PACKAGE

command -v cargo >/dev/null || { say "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
need_pkg nasm nasm   # mozjpeg's SIMD decoder is assembled with nasm
need_pkg cc gcc      # mozjpeg-sys builds libjpeg-turbo's C sources
need_pkg c++ g++     # libfuzzer-sys compiles libFuzzer's C++ (make fuzz)
need_pkg python3 python3
need_pkg node nodejs  # scripts/build-js-plugins.sh: componentize-js builds JavaScript nodes
need_pkg npm npm
need_pkg unzip unzip # scripts/fetch-models.sh unpacks wheels
need_pkg curl curl   # scripts/with-server.sh waits for /health
need_apt 'python3 -m pip --version' python3-pip        # fetch-models.sh: pip download
# scripts/quantize-models.sh makes a venv and renders calibration frames (bench/make_corpus.py)
# with these fonts; DejaVu's condensed faces are in -extra, not -core.
need_apt 'python3 -c "import ensurepip, venv"' python3-venv
fonts=/usr/share/fonts/truetype
need_apt "test -f $fonts/dejavu/DejaVuSans-Bold.ttf -a -f $fonts/dejavu/DejaVuSansCondensed-Bold.ttf" \
    fonts-dejavu-core fonts-dejavu-extra
need_apt "test -f $fonts/liberation/LiberationSans-Regular.ttf -a -f $fonts/liberation/LiberationSansNarrow-Bold.ttf" \
    fonts-liberation
# Tools only the tests use; a build that only builds (the image's build stage) sets
# STREAMHOST_SETUP_TEST_TOOLS=0 and skips them.
if [[ "${STREAMHOST_SETUP_TEST_TOOLS:-1}" != 0 ]]; then
    # The browser end-to-end test (tests/e2e/browser.rs) drives headless Chromium through chromedriver.
    need_apt 'command -v chromium && command -v chromedriver' chromium chromium-driver
    # The observability test (tests/e2e/prometheus.rs) runs Debian's Prometheus and promtool
    # against the shipped dashboard and alert rules (deploy/).
    need_apt 'test -x /usr/bin/prometheus -a -x /usr/bin/promtool' prometheus
    # The rolling-update test (scripts/rollout-test.sh) puts Debian's nginx in front of the servers.
    need_apt 'test -x /usr/sbin/nginx' nginx
fi
