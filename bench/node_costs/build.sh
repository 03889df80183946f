#!/usr/bin/env bash
# Makes the same-work node in Rust, Python and JavaScript with `streamhost new-node` (so what is
# measured is what a new node's author starts from: each answers an image with
# {"node","frame_index","width","height"}) and builds them into DEST (default target/node-costs):
# bench_rust.wasm (the SDK crate, wasm32-unknown-unknown + wasm-component-ld, as
# scripts/build-plugins.sh's rustup route), bench_python.wasm (componentize-py from
# .deps/componentize-py) and bench_js.wasm (componentize-js from .deps/js-toolchain, as
# scripts/build-js-plugins.sh). new-node writes into a scratch checkout, DEST/scaffold (wit/, the
# SDK and a plugins workspace holding only it), never into plugins/ or pipelines/; the manifests
# it writes there (DEST/scaffold/pipelines) are what run.sh serves. Needs the release binary.
# Nothing is rebuilt unless the templates, the SDK, the WIT or the binary are newer than it.
set -euo pipefail
say() { printf 'node-costs build: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DEST="${1:-$REPO/target/node-costs}"
BIN="$REPO/target/release/streamhost"
SCRATCH="$DEST/scaffold"
[[ -x "$BIN" ]] || die "build the server first (cargo build --release -p streamhost)"
mkdir -p "$DEST"

fresh=yes
for f in bench_rust bench_python bench_js; do
    [[ -s "$DEST/$f.wasm" ]] || fresh=no
done
if [[ "$fresh" == yes && -z "$(find "$REPO/host/templates/new-node" "$REPO/plugins/sdk" "$REPO/wit" "$BIN" \
    "$HERE/build.sh" -newer "$DEST/bench_js.wasm" -type f -print -quit)" ]]; then
    exit 0
fi

# The scratch checkout new-node asks for: plugins/Cargo.toml (members: the SDK and what it
# uses), plugins/sdk, pipelines/, and wit/ for the bindings.
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/plugins" "$SCRATCH/pipelines"
cp -r "$REPO/wit" "$SCRATCH/wit"
cp -r "$REPO/plugins/sdk" "$REPO/plugins/node-config" "$REPO/plugins/Cargo.lock" "$SCRATCH/plugins/"
python3 - "$REPO/plugins/Cargo.toml" "$SCRATCH/plugins/Cargo.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text, n = re.subn(r'members = \[[^\]]*\]', 'members = [\n    "node-config",\n    "sdk",\n]', text, count=1)
assert n == 1, "plugins/Cargo.toml has no members list"
open(sys.argv[2], "w").write(text)
PY
for lang in rust python js; do
    "$BIN" new-node "bench_$lang" --lang "$lang" --root "$SCRATCH" >/dev/null ||
        die "streamhost new-node bench_$lang --lang $lang failed"
done

# Rust: the scratch workspace shares plugins/target, so the SDK's dependencies build once.
sysroot="$(rustc --print sysroot)"
host="$(rustc -vV | sed -n 's/^host: //p')"
linker="$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
[[ -x "$linker" ]] || die "no wasm-component-ld at $linker (scripts/build-plugins.sh explains both routes)"
(cd "$SCRATCH/plugins" && cargo build --release --quiet --target wasm32-unknown-unknown -p bench_rust \
    --target-dir "$REPO/plugins/target" \
    --config "target.wasm32-unknown-unknown.linker=\"$linker\"") || die "cargo build of bench_rust failed"
cp -f "$REPO/plugins/target/wasm32-unknown-unknown/release/bench_rust.wasm" "$DEST/bench_rust.wasm"

# Python: componentize-py, installed by scripts/build-plugins.sh.
tool="$REPO/.deps/componentize-py/bin/componentize-py"
[[ -x "$tool" ]] || die "no $tool (make plugins installs it)"
app="$SCRATCH/plugins/bench_python"
(cd "$app" && "$tool" -d "$SCRATCH/wit" -w node-world componentize -p "$app" app \
    -o "$DEST/bench_python.wasm.tmp") >/dev/null || die "componentize-py failed"
mv -f "$DEST/bench_python.wasm.tmp" "$DEST/bench_python.wasm"

# JavaScript: componentize-js, installed by scripts/build-js-plugins.sh (its componentize.mjs
# is copied beside node_modules the same way).
toolchain="$REPO/.deps/js-toolchain"
[[ -d "$toolchain/node_modules/@bytecodealliance/componentize-js" ]] ||
    die "no componentize-js in $toolchain (make plugins installs it)"
cmp -s "$REPO/plugins/js-toolchain/componentize.mjs" "$toolchain/componentize.mjs" ||
    cp -f "$REPO/plugins/js-toolchain/componentize.mjs" "$toolchain/componentize.mjs"
node "$toolchain/componentize.mjs" "$SCRATCH/plugins/bench_js/app.js" "$SCRATCH/wit" "$DEST/bench_js.wasm" ||
    die "componentize-js failed"
ls -l "$DEST"/bench_*.wasm >&2
