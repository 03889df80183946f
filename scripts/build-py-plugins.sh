#!/usr/bin/env bash
# Builds every Python node into a Wasm component with componentize-py, at the exact pin of
# plugins/py-toolchain/requirements.txt, installed into the venv .deps/py-toolchain:
#   plugins/NAME/app.py          -> DEST/NAME.wasm           (dashes in NAME become underscores)
#   plugins/fixtures/NAME/app.py -> DEST/fixture_NAME.wasm   (test fixtures, as the Rust ones)
# Called by scripts/build-plugins.sh (so by `make plugins` and the tests' build script). A node
# is rebuilt only when its folder's .py files, the WIT or the toolchain changed (a sha256 stamp
# beside the cached component in plugins/target/py/): componentize-py takes about 25 s a node.
# Usage: scripts/build-py-plugins.sh DEST
set -euo pipefail

say() { printf 'build-py-plugins: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:?usage: build-py-plugins.sh DEST}"
REQ="$REPO/plugins/py-toolchain/requirements.txt"
VENV="$REPO/.deps/py-toolchain"
CACHE="$REPO/plugins/target/py"

mapfile -t apps < <(find "$REPO/plugins" -mindepth 2 -maxdepth 3 -name app.py \
    -not -path '*/target/*' -not -path '*/node_modules/*' | sort)
[[ ${#apps[@]} -gt 0 ]] || exit 0

req_sha="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/componentize-py" || "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sha" ]]; then
    say "installing componentize-py into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (scripts/setup.sh installs python3-venv)"
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r "$REQ" ||
        die "pip install -r $REQ failed"
    echo "$req_sha" > "$VENV/.requirements.sha256"
fi

mkdir -p "$CACHE" "$DEST"
built=0
for app in "${apps[@]}"; do
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    name="${name//-/_}"
    [[ "$(basename "$(dirname "$dir")")" == fixtures ]] && name="fixture_$name"
    stamp="$( { cat "$dir"/*.py; echo "$req_sha"; cat "$REPO"/wit/*.wit; } | sha256sum | cut -d' ' -f1)"
    if [[ ! -s "$CACHE/$name.wasm" || "$(cat "$CACHE/$name.sha256" 2>/dev/null)" != "$stamp" ]]; then
        say "componentizing $name (${dir#"$REPO/"}/app.py)"
        "$VENV/bin/componentize-py" -d "$REPO/wit" -w node-world componentize -p "$dir" app \
            -o "$CACHE/$name.wasm.part" >&2 || die "componentize-py failed for $app; see the errors above"
        mv -f "$CACHE/$name.wasm.part" "$CACHE/$name.wasm"
        echo "$stamp" > "$CACHE/$name.sha256"
    fi
    cmp -s "$CACHE/$name.wasm" "$DEST/$name.wasm" || cp -f "$CACHE/$name.wasm" "$DEST/$name.wasm"
    built=$((built + 1))
done
say "$built Python components in $DEST"
