#!/usr/bin/env bash
# The project's test command (README "Test"): formatting, lints, the API docs, every test in the workspace, and a build check of
# the fuzz targets (they live outside the workspace because running them needs nightly and libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The API docs build without warnings (broken intra-doc links, bad code blocks).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
cargo test --workspace --locked
for fuzz in device-protocols/fuzz matcher/fuzz; do
    if [ -f "$fuzz/Cargo.toml" ]; then
        cargo check --manifest-path "$fuzz/Cargo.toml" --locked
    fi
done
