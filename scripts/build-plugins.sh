#!/usr/bin/env bash
# Build the example and test plugins (plugins/guests/, their own Cargo workspace) into OUT_DIR as WebAssembly
# components for the wasm32-wasip2 target, with a SHA256SUMS file. The plugin tests read them from
# $HOTSPOT_PLUGINS_DIR (see docs/plugins.md).
#
# Usage: scripts/build-plugins.sh OUT_DIR
#
# Produces: vendor-decoder.wasm, vendor-decoder-flaky.wasm (test build with a deliberate regression),
# quality-basic.wasm, policy-basic.wasm, hostile-loop.wasm, hostile-membomb.wasm, hostile-panic.wasm,
# hostile-wrong-wit.wasm, hostile-fs.wasm.
set -euo pipefail

out="${1:?usage: scripts/build-plugins.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/../plugins/guests"

# The guests' rust-toolchain.toml pins the host workspace's compiler and asks for the target; make sure it is
# there even where rustup does not install listed targets on its own.
if command -v rustup >/dev/null 2>&1; then
    rustup target add wasm32-wasip2 >/dev/null
fi

# Keep guest builds apart from host builds (own lock, own artifacts).
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/hotspot-plugin-guests"
else
    export CARGO_TARGET_DIR="$PWD/target"
fi
release="$CARGO_TARGET_DIR/wasm32-wasip2/release"

build() { # cargo args...
    cargo build --locked --release --target wasm32-wasip2 "$@"
}

build --workspace
for crate in vendor-decoder quality-basic policy-basic hostile-loop hostile-membomb hostile-panic hostile-wrong-wit hostile-fs; do
    cp "$release/${crate//-/_}.wasm" "$out/$crate.wasm"
done
# The same decoder with its test-only regression (rollback tests).
build -p vendor-decoder --features flaky
cp "$release/vendor_decoder.wasm" "$out/vendor-decoder-flaky.wasm"

(cd "$out" && sha256sum ./*.wasm | sed 's# \./# #' > SHA256SUMS)
echo "build-plugins: $(ls "$out"/*.wasm | wc -l) components in $out"
