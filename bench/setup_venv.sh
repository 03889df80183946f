#!/usr/bin/env bash
# Set up everything the bench scripts need; idempotent and quiet when already done.
#   - fonts for make_corpus.py (scripts/setup.sh installs them)
#   - darknet's test photos, extracted from the Debian package into bench/.cache/darknet
#     (the package is downloaded, not installed; optional, make_corpus.py falls back to
#     procedural backgrounds, and truth.json says which it used)
#   - bench/.venv with the exact pins of bench/requirements.txt (binary wheels only)
# Usage: bash bench/setup_venv.sh        (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$BENCH/.venv"
REQ="$BENCH/requirements.txt"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        timeout 300 $SUDO apt-get update -qq >/dev/null 2>&1 || true
        apt_updated=1
    fi
}

# 1. Fonts (and the rest of the base set-up): scripts/setup.sh installs them.
bash "$BENCH/../scripts/setup.sh"

# 2. darknet's test photos (best effort).
PHOTOS="$BENCH/.cache/darknet"
if [ ! -f "$PHOTOS/dog.jpg" ] && [ ! -f /usr/share/darknet/data/dog.jpg ]; then
    tmp="$(mktemp -d)"
    (
        cd "$tmp"
        timeout 120 apt-get download -qq darknet >/dev/null 2>&1 ||
            { apt_update; timeout 120 apt-get download -qq darknet >/dev/null 2>&1; } || exit 0
        deb="$(ls darknet_*.deb 2>/dev/null | head -1)"
        [ -n "$deb" ] || exit 0
        dpkg-deb --fsys-tarfile "$deb" | tar -x --wildcards './usr/share/darknet/data/*.jpg' 2>/dev/null || exit 0
        mkdir -p "$PHOTOS"
        cp usr/share/darknet/data/*.jpg "$PHOTOS/"
    ) || true
    rm -rf "$tmp"
    if [ -f "$PHOTOS/dog.jpg" ]; then
        echo "setup_venv: darknet photos in $PHOTOS"
    else
        echo "setup_venv: darknet photos not available; the corpus uses procedural backgrounds only" >&2
    fi
fi

# 3. The virtual environment.
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
timeout 900 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --only-binary=:all: -r "$REQ"
"$VENV/bin/python" -c "import rapidocr, onnxruntime, cv2, websockets, PIL, numpy"
echo "$want" >"$STAMP"
echo "setup_venv: $VENV ready in $(( $(date +%s) - start )) s"
