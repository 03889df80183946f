#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library and the real models from PyPI wheels (no model hub, no
# CDN), checks every sha256, and keeps them out of git:
#   .deps/onnxruntime/libonnxruntime.so      (onnxruntime 1.31.1 wheel, for ort's load-dynamic)
#   models/PP-OCRv6_det_small.onnx, models/PP-OCRv6_rec_small.onnx   (rapidocr 3.10.0 wheel)
#   models/common_det.onnx                                           (ddddocr 1.6.1 wheel)
# Idempotent: files already present with the right hash are kept; wheels are cached in .deps/wheels.
# Usage: scripts/fetch-models.sh [MODEL_DIR] [ORT_DIR]
set -euo pipefail

say() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${1:-$REPO/models}"
ORT_DIR="${2:-$REPO/.deps/onnxruntime}"
WHEELS="$REPO/.deps/wheels"
PY="${PYTHON:-python3}"
ORT_VERSION=1.31.1
mkdir -p "$MODELS" "$ORT_DIR" "$WHEELS"

[[ "$(uname -m)" == x86_64 ]] || die "only x86_64 Linux wheels are wired up (this is $(uname -m))"
command -v "$PY" >/dev/null || die "$PY not found (needed for pip download)"
command -v unzip >/dev/null || die "unzip not found (scripts/setup.sh installs it)"

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

# wheel NAME VERSION SHA256 [pip platform args...]: prints the cached wheel's path.
wheel() {
    local name="$1" version="$2" sha="$3"; shift 3
    local found
    found="$(ls "$WHEELS"/"${name}"-"${version}"-*.whl 2>/dev/null | head -n1 || true)"
    if [[ -z "$found" ]]; then
        timeout 300 "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            "$@" -d "$WHEELS" "${name}==${version}" >&2 || die "pip download ${name}==${version} failed"
        found="$(ls "$WHEELS"/"${name}"-"${version}"-*.whl 2>/dev/null | head -n1 || true)"
    fi
    [[ -n "$found" ]] || die "no wheel for ${name}==${version}"
    if [[ -n "$sha" ]] && ! sha_ok "$found" "$sha"; then
        rm -f "$found"; die "$found: sha256 mismatch (removed; run again to re-download)"
    fi
    echo "$found"
}

# extract WHEEL MEMBER DEST SHA256
extract() {
    local whl="$1" member="$2" dest="$3" sha="$4"
    sha_ok "$dest" "$sha" && return 0
    unzip -p "$whl" "$member" > "$dest.part" || die "$member missing from $whl"
    mv "$dest.part" "$dest"
    sha_ok "$dest" "$sha" || die "$dest: sha256 mismatch after extraction"
    say "extracted $(basename "$dest")"
}

# ONNX Runtime: the manylinux wheel carries the shared library ort loads at run time.
lib="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [[ ! -s "$lib" ]]; then
    whl="$(wheel onnxruntime "$ORT_VERSION" "" --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --python-version 3.11 --implementation cp)"
    unzip -p "$whl" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" > "$lib.part" || die "library missing from $whl"
    mv "$lib.part" "$lib"
    say "extracted libonnxruntime.so.$ORT_VERSION"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"

# Models (hashes from shared/notes/models.md).
need_rapid=0
sha_ok "$MODELS/PP-OCRv6_det_small.onnx" 090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f || need_rapid=1
sha_ok "$MODELS/PP-OCRv6_rec_small.onnx" 6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884 || need_rapid=1
if [[ $need_rapid -eq 1 ]]; then
    whl="$(wheel rapidocr 3.10.0 2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050)"
    extract "$whl" rapidocr/models/PP-OCRv6_det_small.onnx "$MODELS/PP-OCRv6_det_small.onnx" \
        090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f
    extract "$whl" rapidocr/models/PP-OCRv6_rec_small.onnx "$MODELS/PP-OCRv6_rec_small.onnx" \
        6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884
fi
if ! sha_ok "$MODELS/common_det.onnx" 6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6; then
    whl="$(wheel ddddocr 1.6.1 c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935)"
    extract "$whl" ddddocr/common_det.onnx "$MODELS/common_det.onnx" \
        6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6
fi
say "models in $MODELS, ONNX Runtime in $ORT_DIR"
