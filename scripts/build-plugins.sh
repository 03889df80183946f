#!/usr/bin/env bash
# Build every crate of the plugins/ workspace as a WebAssembly component and copy the .wasm files
# (crate name with '-' -> '_', e.g. frame_info.wasm, fixture_trap.wasm) into OUT_DIR.
#
# Usage: scripts/build-plugins.sh [OUT_DIR]        (default: <repo>/target/plugins)
#
# Both routes build for wasm32-unknown-unknown and link with wasm-component-ld, so a component
# imports exactly what wit/node.wit's world declares and nothing else. The crates in WASIP2_CRATES
# (test fixtures whose std imports WASI 0.2, which the host links with nothing granted) are built
# for wasm32-wasip2 instead, by the same route.
# Route 1 (standard): rustup's wasm32-unknown-unknown target (added with a bounded `rustup target
#   add` if missing) and the wasm-component-ld rustup ships in the toolchain's rustlib, target dir
#   plugins/target.
#   wasm32-wasip2 is added the same bounded way for WASIP2_CRATES.
# Route 2 (offline fallback, see shared/notes/toolchain.md): Debian's rustc-web packages,
#   -Zbuild-std and Debian's wasm-component-ld, target dir plugins/target-debian (wasm32-wasip2
#   through -Zbuild-std too: not yet tried on a machine without rustup).
# STREAMHOST_WASM_ROUTE=debian forces route 2; STREAMHOST_WASM_ROUTE=rustup forbids the fallback.
# Then each Python node, plugins/NAME/app.py, is built into NAME.wasm by componentize-py (pinned,
# installed from PyPI into a venv under .deps/ with a bounded pip call); its components import
# WASI 0.2 like any componentize-py output.
#
# Quiet on success (one summary line on stderr), loud on failure. Called from make and from a
# cargo build script, so it first scrubs the variables a parent cargo sets.
set -euo pipefail

say() { printf 'build-plugins: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGINS="$REPO/plugins"
DEST="${1:-$REPO/target/plugins}"
ROUTE="${STREAMHOST_WASM_ROUTE:-auto}"

# --- Scrub what a parent cargo (build.rs) or make leaks into the environment. ----------------
unset CARGO_TARGET_DIR RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_BUILD_RUSTFLAGS \
    CARGO_MAKEFLAGS MAKEFLAGS MFLAGS MAKELEVEL RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS \
    TARGET HOST OUT_DIR PROFILE OPT_LEVEL DEBUG NUM_JOBS RUSTC RUSTDOC RUSTC_LINKER \
    CARGO_PRIMARY_PACKAGE CARGO_CRATE_NAME CARGO_BIN_NAME CARGO_MANIFEST_DIR CARGO_MANIFEST_PATH \
    CARGO_MANIFEST_LINKS CARGO_RUSTC_CURRENT_DIR CARGO_TARGET_TMPDIR RUSTC_BOOTSTRAP
while IFS= read -r name; do
    case "$name" in
        CARGO_FEATURE_* | CARGO_CFG_* | CARGO_PKG_* | CARGO_MANIFEST_* | DEP_* | CARGO_TARGET_*_RUSTFLAGS | CARGO_TARGET_*_LINKER)
            unset "$name" ;;
    esac
done < <(compgen -e)

[[ -f "$PLUGINS/Cargo.toml" ]] || die "no plugins workspace at $PLUGINS"
command -v cargo >/dev/null || die "cargo not found on PATH"
mkdir -p "$DEST" || die "cannot create $DEST"
DEST="$(cd "$DEST" && pwd)"

# Built for wasm32-wasip2, and left out of the wasm32-unknown-unknown build.
WASIP2_CRATES=(fixture-wasi-attack)
EXCLUDES=()
for name in "${WASIP2_CRATES[@]}"; do EXCLUDES+=(--exclude "$name"); done

# Package names of the workspace members, from `cargo metadata` without a JSON tool (in its
# compact output only a package's own "name" is followed by "version").
packages() {
    (cd "$PLUGINS" && "$@" metadata --no-deps --format-version 1) |
        grep -o '"name":"[^"]*","version"' | sed 's/"name":"\([^"]*\)".*/\1/'
}

# only_wasip2 CARGO...: sets ONLY_WASIP2 to `-p NAME` for each of WASIP2_CRATES in the workspace
# (a checkout trimmed to a few nodes, as the new-node test builds, may have none of them).
ONLY_WASIP2=()
only_wasip2() {
    local names w
    names="$(packages "$@")" || die "cargo metadata failed in $PLUGINS"
    ONLY_WASIP2=()
    for w in "${WASIP2_CRATES[@]}"; do
        if grep -qx "$w" <<<"$names"; then ONLY_WASIP2+=(-p "$w"); fi
    done
}

is_wasip2() {
    local w
    for w in "${WASIP2_CRATES[@]}"; do [[ "$1" == "$w" ]] && return 0; done
    return 1
}

# copy_out TARGET_DIR TRIPLE CARGO...: copy each member's component built for TRIPLE (the
# WASIP2_CRATES for wasm32-wasip2, the others otherwise) into DEST, checking it is one.
copy_out() {
    local target_dir="$1" triple="$2"
    shift 2
    local names count=0 name file magic
    names="$(packages "$@")" || die "cargo metadata failed in $PLUGINS"
    [[ -n "$names" ]] || die "cargo metadata listed no packages in $PLUGINS"
    for name in $names; do
        if is_wasip2 "$name"; then [[ "$triple" == wasm32-wasip2 ]] || continue
        else [[ "$triple" != wasm32-wasip2 ]] || continue; fi
        file="$target_dir/$triple/release/${name//-/_}.wasm"
        # A library crate (shared guest code such as node-config, the SDK) has no component: its
        # manifest (found by its package name) declares no cdylib.
        if [[ ! -f "$file" ]]; then
            local manifest
            manifest="$(grep -lx "name = \"$name\"" "$PLUGINS"/*/Cargo.toml "$PLUGINS"/fixtures/*/Cargo.toml 2>/dev/null | head -n 1)"
            if [[ -n "$manifest" ]] && ! grep -q cdylib "$manifest"; then continue; fi
        fi
        [[ -f "$file" ]] || die "expected $file after the build, it is missing"
        magic="$(od -An -tx1 -N8 "$file" | tr -d ' \n')"
        [[ "$magic" == "0061736d0d000100" ]] ||
            die "$file is not a component (magic $magic; a core module is 0061736d01000000)"
        # cp only when changed, so the copies keep their mtime and dependants don't rebuild.
        cmp -s "$file" "$DEST/${name//-/_}.wasm" || cp -f "$file" "$DEST/${name//-/_}.wasm"
        count=$((count + 1))
    done
    echo "$count"
}

# --- Route 1: rustup + wasm32-unknown-unknown + the toolchain's wasm-component-ld. ----------------
route_rustup() {
    local triple sysroot_probe
    # A toolchain without rustup (a container's build base copied from a rustup sysroot) may
    # already hold both targets: then rustup is not needed.
    sysroot_probe="$(cd "$PLUGINS" && rustc --print sysroot 2>/dev/null)" || sysroot_probe=""
    if ! command -v rustup >/dev/null; then
        for triple in wasm32-unknown-unknown wasm32-wasip2; do
            [[ -n "$sysroot_probe" && -d "$sysroot_probe/lib/rustlib/$triple" ]] ||
                { say "rustup not found and the toolchain lacks $triple"; return 1; }
        done
    fi
    for triple in wasm32-unknown-unknown wasm32-wasip2; do
        if [[ -d "$sysroot_probe/lib/rustlib/$triple" ]]; then continue; fi
        if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
            say "adding the $triple target with rustup"
            timeout 120 rustup target add "$triple" >&2 ||
                { say "rustup target add $triple failed"; return 1; }
        fi
    done
    local sysroot host linker
    sysroot="$(cd "$PLUGINS" && rustc --print sysroot)" || { say "rustc --print sysroot failed"; return 1; }
    host="$(cd "$PLUGINS" && rustc -vV | sed -n 's/^host: //p')"
    linker="$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
    [[ -x "$linker" ]] || { say "no wasm-component-ld at $linker"; return 1; }
    local target_dir="$PLUGINS/target"
    (cd "$PLUGINS" && cargo build --release --quiet --target wasm32-unknown-unknown --target-dir "$target_dir" \
        --workspace "${EXCLUDES[@]}" --config "target.wasm32-unknown-unknown.linker=\"$linker\"") >&2 ||
        die "cargo build of the plugins (wasm32-unknown-unknown) failed; see the errors above"
    only_wasip2 cargo
    if [[ ${#ONLY_WASIP2[@]} -gt 0 ]]; then
        (cd "$PLUGINS" && cargo build --release --quiet --target wasm32-wasip2 --target-dir "$target_dir" \
            "${ONLY_WASIP2[@]}") >&2 ||
            die "cargo build of ${WASIP2_CRATES[*]} (wasm32-wasip2) failed; see the errors above"
    fi
    local count count2
    count="$(copy_out "$target_dir" wasm32-unknown-unknown cargo)" || exit 1
    count2="$(copy_out "$target_dir" wasm32-wasip2 cargo)" || exit 1
    say "built $count components (rustup, wasm32-unknown-unknown + wasm-component-ld) and $count2 (wasm32-wasip2) into $DEST"
}

# --- Route 2: Debian rustc-web, offline. ---------------------------------------------------------
DEB_RUSTC=/usr/bin/rustc
DEB_CARGO=/usr/bin/cargo
DEB_LINKER=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
DEB_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

route_debian() {
    if [[ ! -x "$DEB_LINKER" || ! -x "$DEB_CARGO" || ! -d /usr/lib/rustlib/src/rust/library ]]; then
        command -v apt-get >/dev/null || die "route 2 needs apt-get to install ${DEB_PACKAGES[*]}"
        local sudo=()
        [[ "$(id -u)" == 0 ]] || sudo=(sudo -n)
        say "installing ${DEB_PACKAGES[*]} with apt-get"
        local log
        log="$(mktemp)"
        if ! { "${sudo[@]}" apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${DEB_PACKAGES[@]}"; } >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "apt-get install ${DEB_PACKAGES[*]} failed"
        fi
        rm -f "$log"
        [[ -x "$DEB_LINKER" ]] || die "$DEB_LINKER missing after installing ${DEB_PACKAGES[*]}"
    fi
    local target_dir="$PLUGINS/target-debian"
    (cd "$PLUGINS" && RUSTC="$DEB_RUSTC" RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 "$DEB_CARGO" build \
        --release --quiet --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
        --target-dir "$target_dir" --workspace "${EXCLUDES[@]}" \
        --config "target.wasm32-unknown-unknown.linker=\"$DEB_LINKER\"") >&2 ||
        die "cargo build of the plugins (Debian rustc-web, wasm32-unknown-unknown) failed; see the errors above"
    RUSTC="$DEB_RUSTC" only_wasip2 "$DEB_CARGO"
    if [[ ${#ONLY_WASIP2[@]} -gt 0 ]]; then
        (cd "$PLUGINS" && RUSTC="$DEB_RUSTC" RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 "$DEB_CARGO" build \
            --release --quiet --target wasm32-wasip2 -Zbuild-std=std,panic_abort \
            --target-dir "$target_dir" "${ONLY_WASIP2[@]}" \
            --config "target.wasm32-wasip2.linker=\"$DEB_LINKER\"") >&2 ||
            die "cargo build of ${WASIP2_CRATES[*]} (Debian rustc-web, wasm32-wasip2) failed; see the errors above"
    fi
    local count count2
    count="$(RUSTC="$DEB_RUSTC" copy_out "$target_dir" wasm32-unknown-unknown "$DEB_CARGO")" || exit 1
    count2="$(RUSTC="$DEB_RUSTC" copy_out "$target_dir" wasm32-wasip2 "$DEB_CARGO")" || exit 1
    say "built $count components (Debian rustc-web, wasm32-unknown-unknown) and $count2 (wasm32-wasip2) into $DEST"
}

# --- Python components: componentize-py. -----------------------------------------------------------
COMPONENTIZE_PY_VERSION=0.25.1
PY_VENV="$REPO/.deps/componentize-py"

build_python() {
    local apps=()
    mapfile -t apps < <(find "$PLUGINS" -mindepth 2 -maxdepth 2 -name app.py | sort)
    [[ ${#apps[@]} -gt 0 ]] || return 0
    local tool="$PY_VENV/bin/componentize-py"
    if [[ "$("$tool" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
        say "installing componentize-py $COMPONENTIZE_PY_VERSION into $PY_VENV"
        local log
        log="$(mktemp)"
        if ! { timeout 120 python3 -m venv "$PY_VENV" &&
            timeout 300 "$PY_VENV/bin/pip" install -q --disable-pip-version-check \
                "componentize-py==$COMPONENTIZE_PY_VERSION"; } >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "could not install componentize-py $COMPONENTIZE_PY_VERSION from PyPI (needed for plugins/*/app.py)"
        fi
        rm -f "$log"
    fi
    local app dir name out world count=0
    for app in "${apps[@]}"; do
        dir="$(dirname "$app")"
        # plugins/NAME/app.py -> NAME.wasm ('-' -> '_', as for the Rust and JavaScript nodes).
        name="$(basename "$dir" | tr - _)"
        out="$DEST/$name.wasm"
        # The node world of wit/ (streamhost:node@0.2.0). An app with its own wit/world.wit (our
        # world plus WASI it calls directly) targets that world: `package <pkg>;` and
        # `world <name>` read from the file, and the node package it includes (0.1.0 from
        # wit/v0.1.0, which the host still loads, or 0.2.0).
        local wit=(-d "$REPO/wit" -w node-world)
        if [[ -f "$dir/wit/world.wit" ]]; then
            local node_wit="$REPO/wit"
            grep -q 'streamhost:node/[a-z-]*@0\.1\.0' "$dir/wit/world.wit" && node_wit="$REPO/wit/v0.1.0"
            world="$(sed -n 's/^package \([^;@]*\).*/\1/p' "$dir/wit/world.wit")/$(sed -n 's/^world \([a-z0-9-]*\).*/\1/p' "$dir/wit/world.wit")"
            wit=(-d "$node_wit" -d "$dir/wit" -w "$world")
        fi
        # componentize-py takes ~20 s: rebuild only when the app, the WIT or the version changed.
        if [[ ! -f "$out" || -n "$(find -L "$dir" "$REPO/wit" "$tool" -newer "$out" -not -path "*/__pycache__*" -print -quit)" ]]; then
            (cd "$dir" && "$tool" "${wit[@]}" componentize -p "$dir" app -o "$out.tmp") >/dev/null ||
                die "componentize-py failed on $app; see the errors above"
            mv -f "$out.tmp" "$out"
        fi
        count=$((count + 1))
    done
    say "built $count Python components (componentize-py $COMPONENTIZE_PY_VERSION) into $DEST"
}

case "$ROUTE" in
    auto) route_rustup || { say "falling back to the offline Debian route"; route_debian; } ;;
    rustup) route_rustup || die "the rustup route failed and STREAMHOST_WASM_ROUTE=rustup forbids the fallback" ;;
    debian) route_debian ;;
    *) die "STREAMHOST_WASM_ROUTE must be auto, rustup or debian, not '$ROUTE'" ;;
esac
build_python

# JavaScript nodes (plugins/NAME/app.js), through componentize-js.
bash "$REPO/scripts/build-js-plugins.sh" "$DEST"
