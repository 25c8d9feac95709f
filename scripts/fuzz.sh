#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each:
#   route_key, signing      the pure parsers of sandgate-shared (route keys,
#                           OSEP-0011 signed routes);
#   request_head, chunked,  the proxy's HTTP/1.1 fast-path framing
#   response_framing        (proxy/src/service/fast/{head,chunked}.rs),
#                           checked against independent RFC 9112 reference
#                           implementations in fuzz/src/reference/.
# scripts/test.sh runs it in CI with FUZZ_SECONDS=60; longer runs are
# recorded in bench/results/fuzz.md.
#
# Usage:
#   scripts/fuzz.sh                   # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh  # 5 minutes each
#   scripts/fuzz.sh route_key         # only the named target(s)
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60), passed as
#                   `-- -max_total_time=N`.
#   FUZZ_SANITIZER  address (default) or none. `address` builds with ASan;
#                   if that build fails the script falls back to `none`
#                   (plain libFuzzer, still catches panics and overflows).
#   FUZZ_JOBS       parallel libFuzzer jobs per target (default 1).
#   FUZZ_TARGET_DIR the fuzz build's directory (default fuzz/target). It is
#                   never the main build's CARGO_TARGET_DIR: the fuzz build
#                   uses other flags (sanitizer, sancov, release).
#   FUZZ_COVERAGE   1 to finish with a source-coverage report of the code
#                   under test over each corpus (needs
#                   `rustup component add llvm-tools-preview`; built under
#                   $FUZZ_TARGET_DIR/coverage, data in fuzz/coverage/).
#
# Stable toolchain: cargo-fuzz passes nightly-only flags to rustc
# (`-Zsanitizer=address`, `--cfg fuzzing` with sancov llvm-args). Setting
# RUSTC_BOOTSTRAP=1 makes the stable compiler accept them; nothing else is
# needed on x86_64 Linux (no nightly, no -Zbuild-std). Only this script's
# fuzz build sees the variable: the main workspace never does.
#
# Corpora grow in fuzz/corpus/<target>/ and crashes land in
# fuzz/artifacts/<target>/ (both gitignored). Hand-written seeds in
# fuzz/seeds/<target>/ and a dictionary in fuzz/dicts/<target>.dict are used
# when present. Reproduce a crash with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# and minimize it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"

step() { printf '\n==> %s\n' "$*"; }

# cargo-fuzz from crates.io; --locked uses its tested dependency versions.
# Built in a temporary directory, not in a CARGO_TARGET_DIR the caller set.
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz"
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version 0.13.2 --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"

# Targets: the arguments, or every target cargo-fuzz knows about.
if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# The fuzz crate's own unit tests: the reference implementations the
# targets compare with, and the proxy files' inline tests compiled here.
step "unit tests of fuzz/ (reference implementations)"
cargo test --manifest-path fuzz/Cargo.toml --lib --locked

# Build first, so a sanitizer that the toolchain cannot provide is detected
# once, before any fuzzing time is spent.
step "building fuzz targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer"; then
    if [[ "$sanitizer" == none ]]; then
        exit 1
    fi
    echo "build with --sanitizer $sanitizer failed; falling back to --sanitizer none" >&2
    sanitizer=none
    cargo fuzz build --sanitizer none
fi

failed=()
for target in "${targets[@]}"; do
    step "fuzzing $target for ${seconds}s (sanitizer: $sanitizer, jobs: $jobs)"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    # The first corpus directory receives new inputs; seeds are read-only.
    dirs=("$corpus")
    [[ -d "fuzz/seeds/$target" ]] && dirs+=("fuzz/seeds/$target")
    args=(-max_total_time="$seconds" -print_final_stats=1)
    [[ -f "fuzz/dicts/$target.dict" ]] && args+=(-dict="fuzz/dicts/$target.dict")
    if ((jobs > 1)); then
        args+=(-fork="$jobs")
    fi
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "${dirs[@]}" -- "${args[@]}"; then
        failed+=("$target")
    fi
done

# The code each target is about, for the coverage report.
sources() {
    case "$1" in
        route_key | signing) echo shared/src/route_key.rs shared/src/signing.rs ;;
        *) echo proxy/src/service/fast/head.rs proxy/src/service/fast/chunked.rs ;;
    esac
}

# Optional: line coverage of the code under test reached by the corpus.
if [[ "${FUZZ_COVERAGE:-0}" == 1 ]]; then
    host="$(rustc -vV | sed -n 's/^host: //p')"
    llvm_bin="$(rustc --print sysroot)/lib/rustlib/$host/bin"
    for target in "${targets[@]}"; do
        step "coverage of $target"
        cargo fuzz coverage --target-dir "$CARGO_TARGET_DIR/coverage" "$target" "fuzz/corpus/$target"
        # shellcheck disable=SC2046 # one word per file
        "$llvm_bin/llvm-cov" report \
            "$CARGO_TARGET_DIR/coverage/$host/release/$target" \
            -instr-profile="fuzz/coverage/$target/coverage.profdata" \
            $(sources "$target") "fuzz/fuzz_targets/$target.rs"
    done
fi

if ((${#failed[@]} > 0)); then
    step "FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
step "no crashes in ${targets[*]} (${seconds}s each)"
