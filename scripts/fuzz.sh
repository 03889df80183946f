#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (make fuzz FUZZ_SECONDS=60)
#
# Works on stable Rust: the default build uses no sanitizer, which needs no -Z flag.
# FUZZ_SANITIZER=address (or another) asks for one; that needs -Zsanitizer, so on a stable
# toolchain the script sets RUSTC_BOOTSTRAP=1 for the build.
#
# Every target first replays fuzz/regressions/<target>/ (inputs that once crashed it), then
# fuzzes from the committed seeds (fuzz/corpus/<target>/, and pipelines/ for `manifest`; read
# only) plus a scratch corpus in fuzz/target/corpus/<target>/ that persists between local runs.
# fuzz/<target>.dict, where present, is the target's libFuzzer dictionary. A crash, timeout or OOM
# is copied into fuzz/regressions/<target>/ (commit it with the fix:
# host/tests/fuzz_regressions.rs replays frame_decode and manifest ones in `cargo test`) and
# the script exits non-zero after running the remaining targets.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(frame_decode manifest message_handler)
SANITIZER=${FUZZ_SANITIZER:-none}

say() { printf 'fuzz: %s\n' "$*" >&2; }

[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || { say "SECONDS_PER_TARGET must be a number, got '$SECONDS_PER_TARGET'"; exit 2; }

if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    timeout 900 cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

build_flags=(--sanitizer "$SANITIZER" --debug-assertions --target-dir "$PWD/fuzz/target")
# Faster builds, somewhat slower fuzzing (cargo-fuzz's default is 1 unit): e.g. 16 in CI.
[[ -z ${FUZZ_CODEGEN_UNITS:-} ]] || build_flags+=(--codegen-units "$FUZZ_CODEGEN_UNITS")
# The same trade in optimisation (cargo-fuzz builds at the release profile's 3): CI's 1 took the
# instrumented build from 10 minutes to 7 on 2 cores (optimising cranelift-codegen is most of it).
if [[ -n ${FUZZ_OPT_LEVEL:-} ]]; then
    [[ $FUZZ_OPT_LEVEL =~ ^[0-3]$ ]] || { say "FUZZ_OPT_LEVEL must be 0-3, got '$FUZZ_OPT_LEVEL'"; exit 2; }
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=$FUZZ_OPT_LEVEL
fi
if [[ $SANITIZER != none ]] && ! rustc -V | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=fuzz/target/$triple/release

say "building ${TARGETS[*]} (sanitizer: $SANITIZER)"
start=$SECONDS
if [[ $# -eq 0 ]]; then
    cargo fuzz build "${build_flags[@]}" # every target, in one cargo invocation
else
    for t in "${TARGETS[@]}"; do cargo fuzz build "${build_flags[@]}" "$t"; done
fi
say "built in $((SECONDS - start))s"

failed=()
for t in "${TARGETS[@]}"; do
    artifacts=fuzz/artifacts/$t
    regressions=fuzz/regressions/$t
    scratch=fuzz/target/corpus/$t
    mkdir -p "$artifacts" "$scratch" "fuzz/corpus/$t"
    libfuzzer_args=(-artifact_prefix="$artifacts/" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1)
    [[ -f fuzz/$t.dict ]] && libfuzzer_args+=(-dict="fuzz/$t.dict")
    extra_seeds=()
    [[ $t != manifest ]] || extra_seeds=(pipelines) # the shipped manifests, always current

    shopt -s nullglob
    known=("$regressions"/*)
    shopt -u nullglob
    if [[ ${#known[@]} -gt 0 ]]; then
        say "$t: replaying ${#known[@]} regression input(s)"
        if ! "$bin_dir/$t" "${libfuzzer_args[@]}" "${known[@]}"; then
            say "$t: a regression input fails again"
            failed+=("$t (regression)")
            continue
        fi
    fi

    say "$t: fuzzing for ${SECONDS_PER_TARGET}s"
    marker=$(mktemp)
    status=0
    timeout --kill-after=30 $((SECONDS_PER_TARGET + 120)) \
        "$bin_dir/$t" "${libfuzzer_args[@]}" -max_total_time="$SECONDS_PER_TARGET" \
        "$scratch" "fuzz/corpus/$t" "${extra_seeds[@]}" || status=$?
    if [[ $status -ne 0 ]]; then
        found=$(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
            \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
        if [[ -n $found ]]; then
            mkdir -p "$regressions"
            while IFS= read -r f; do
                cp "$f" "$regressions/"
                say "$t: saved $regressions/$(basename "$f")"
            done <<<"$found"
        fi
        say "$t: failed (exit $status); reproduce with: $bin_dir/$t <input>"
        failed+=("$t")
    fi
    rm -f "$marker"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    say "FAILED: ${failed[*]}"
    exit 1
fi
say "no crashes in ${TARGETS[*]} (${SECONDS_PER_TARGET}s each)"
