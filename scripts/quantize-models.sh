#!/usr/bin/env bash
# Derives models/PP-OCRv6_det_small.int8.onnx from the sha256-checked fp32 detector (run by
# `make models` after fetch-models.sh; scripts/quantize-models.py says why and how), and renders
# the held-out frames the server's int8 gate compares int8 and fp32 on (models/int8-gate).
#   - .deps/quant-venv: the exact pins of scripts/quantize-requirements.txt (binary wheels)
#   - .deps/calib: calibration frames from bench/make_corpus.py (own seed, no photos)
#   - models/int8-gate: held-out frames (a third seed: neither calibration nor benchmark frames)
#   - models/test/PP-OCRv6_det_small.degraded.int8.onnx: the int8 model with its first layer's
#     weights scaled by a quarter, which the tests check the gate refuses
# Idempotent: a recipe stamp (hashes of the source model, the scripts and the pins) next to the
# model says whether the int8 file is current; only then is nothing done.
# Usage: scripts/quantize-models.sh [MODEL_DIR]
set -euo pipefail

say() { printf 'quantize-models: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${1:-$REPO/models}"
VENV="$REPO/.deps/quant-venv"
CALIB="$REPO/.deps/calib"
REQ="$REPO/scripts/quantize-requirements.txt"
PY="${PYTHON:-python3}"
# Calibration seed: any seed but the accuracy corpus's (bench/make_corpus.py SEED).
CALIB_SEED=20261124
CALIB_TEXT_FRAMES=100
# The int8 gate's held-out frames: a seed of their own (20261125 chose the fp32 layers).
GATE_SEED=20261126
GATE="$MODELS/int8-gate"
TARGET="$MODELS/PP-OCRv6_det_small.int8.onnx"
STAMP="$MODELS/.PP-OCRv6_det_small.int8.recipe"

[[ -f "$MODELS/PP-OCRv6_det_small.onnx" ]] || die "$MODELS/PP-OCRv6_det_small.onnx missing (run scripts/fetch-models.sh)"
recipe="$( { sha256sum "$MODELS/PP-OCRv6_det_small.onnx" | cut -d' ' -f1
    cat "$0" "$REPO/scripts/quantize-models.py" "$REQ" "$REPO/bench/make_corpus.py"
    echo "$CALIB_SEED $CALIB_TEXT_FRAMES $GATE_SEED"; } | sha256sum | cut -d' ' -f1)"
if [[ -s "$TARGET" && -f "$STAMP" && "$(cat "$STAMP")" == "$recipe" && -f "$GATE/truth.json" ]]; then
    exit 0
fi

req_sha="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sha" ]]; then
    say "creating $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "python3 -m venv failed (scripts/setup.sh installs python3-venv)"
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --find-links "$REPO/.deps/wheels" -r "$REQ" || die "pip install -r $REQ failed"
    echo "$req_sha" > "$VENV/.requirements.sha256"
fi

say "generating calibration frames in $CALIB"
"$VENV/bin/python" "$REPO/bench/make_corpus.py" "$CALIB" --seed "$CALIB_SEED" --no-photos \
    --text-frames "$CALIB_TEXT_FRAMES" --empty-frames 8 >&2
say "generating the int8 gate's held-out frames in $GATE"
rm -rf "$GATE/.verdicts"
"$VENV/bin/python" "$REPO/bench/make_corpus.py" "$GATE" --seed "$GATE_SEED" --no-photos >&2
rm -f "$GATE/f000.jpg" # the repository's example frame, which every corpus starts with
"$VENV/bin/python" "$REPO/scripts/quantize-models.py" "$MODELS" "$CALIB"
echo "$recipe" > "$STAMP"
