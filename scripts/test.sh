#!/usr/bin/env bash
# The test command (README.md): every gate CI enforces, in order.
# Prerequisites (.ci/run installs them on a fresh machine): Rust 1.95 with
# cargo-nextest, cmake, a running Docker engine for the runtime tests, and
# the openssl command (tests/tests/tls.rs makes its certificates with it).
# scripts/fuzz.sh installs cargo-fuzz itself (it needs g++ for libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export SANDGATE_CONTROL_BIN="$target_dir/debug/sandgate-control"

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (the end-to-end tests run the real binaries)"
cargo build --workspace --locked

step "test images (local, no registry needed)"
./scripts/build-test-images.sh

step "tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc

step "published OpenSandbox clients (Python SDK, CLI, JS SDK) against the stack"
./scripts/compat.sh

step "differential: OpenSandbox 1.1.1 from PyPI and Sandgate, side by side on one engine"
./scripts/differential.sh

step "schemathesis against the generated OpenAPI document"
./scripts/schemathesis.sh

step "API docs render offline in headless Chromium (/docs, /redoc)"
./scripts/docs-check.sh

step "example configurations"
for file in config/control*.toml config/opensandbox*.toml; do
    "$SANDGATE_CONTROL_BIN" --check-config "$file"
done
for file in config/proxy*.toml; do
    "$target_dir/debug/sandgate-proxy" --check-config "$file"
done

# Bounded fuzzing (scripts/fuzz.sh): the shared parsers and the fast path's
# framing against their RFC 9112 references, FUZZ_SECONDS per target. Its
# build (ASan, release) has its own directory, $target_dir/fuzz.
step "fuzzing, ${FUZZ_SECONDS:-60}s per target"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" FUZZ_TARGET_DIR="$target_dir/fuzz" ./scripts/fuzz.sh

step "all gates passed"
