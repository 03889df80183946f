#!/usr/bin/env bash
# Builds the three same-work nodes of `make node-costs` into DEST (default target/node-costs):
# bench_rust.wasm (wasm32-unknown-unknown + wasm-component-ld, as scripts/build-plugins.sh's
# rustup route), bench_python.wasm (componentize-py from .deps/componentize-py, as its Python
# route) and bench_js.wasm (componentize-js from .deps/js-toolchain, as
# scripts/build-js-plugins.sh). Bench only: nothing here ships or joins pipelines/.
# Each component is rebuilt only when its source or the WIT is newer than it.
set -euo pipefail
say() { printf 'node-costs build: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DEST="${1:-$REPO/target/node-costs}"
mkdir -p "$DEST"
stale() { [[ ! -s "$1" || -n "$(find "$2" "$REPO/wit" -newer "$1" -type f -print -quit)" ]]; }

# Rust: shares plugins/target, so wit-bindgen is not compiled twice.
if stale "$DEST/bench_rust.wasm" "$HERE/rust/src"; then
    sysroot="$(rustc --print sysroot)"
    host="$(rustc -vV | sed -n 's/^host: //p')"
    linker="$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
    [[ -x "$linker" ]] || die "no wasm-component-ld at $linker (scripts/build-plugins.sh explains both routes)"
    (cd "$HERE/rust" && cargo build --release --quiet --target wasm32-unknown-unknown \
        --target-dir "$REPO/plugins/target" \
        --config "target.wasm32-unknown-unknown.linker=\"$linker\"") || die "cargo build of the Rust node failed"
    cp -f "$REPO/plugins/target/wasm32-unknown-unknown/release/bench_node_rust.wasm" "$DEST/bench_rust.wasm"
fi

# Python: componentize-py, installed by scripts/build-plugins.sh.
if stale "$DEST/bench_python.wasm" "$HERE/python/app.py"; then
    tool="$REPO/.deps/componentize-py/bin/componentize-py"
    [[ -x "$tool" ]] || die "no $tool (make plugins installs it)"
    (cd "$HERE/python" && "$tool" -d "$REPO/wit" -w node-world componentize -p "$HERE/python" app \
        -o "$DEST/bench_python.wasm.tmp") >/dev/null || die "componentize-py failed"
    mv -f "$DEST/bench_python.wasm.tmp" "$DEST/bench_python.wasm"
fi

# JavaScript: componentize-js, installed by scripts/build-js-plugins.sh.
if stale "$DEST/bench_js.wasm" "$HERE/js/app.js"; then
    toolchain="$REPO/.deps/js-toolchain"
    [[ -d "$toolchain/node_modules/@bytecodealliance/componentize-js" ]] || die "no componentize-js in $toolchain (make plugins installs it)"
    cmp -s "$REPO/plugins/js-toolchain/componentize.mjs" "$toolchain/componentize.mjs" ||
        cp -f "$REPO/plugins/js-toolchain/componentize.mjs" "$toolchain/componentize.mjs"
    node "$toolchain/componentize.mjs" "$HERE/js/app.js" "$REPO/wit" "$DEST/bench_js.wasm" ||
        die "componentize-js failed"
fi
ls -l "$DEST"/bench_*.wasm >&2
