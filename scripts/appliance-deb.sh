#!/usr/bin/env bash
# Builds the appliance package (hotspot-edge_<version>_amd64.deb) with cargo-deb into image-build/out/.
# Ships the face models (fetched and verified into models/ by scripts/fetch-models.sh if not there yet): the packaged
# configuration turns face matching on, so a package without them would not start.
#
# Usage: scripts/appliance-deb.sh [--no-build]   (CARGO_TARGET_DIR is honoured; default target/)
#   --no-build   pack the binaries already in $CARGO_TARGET_DIR/release (e.g. built from a clean export of a commit)
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
build=1
[ "${1:-}" = "--no-build" ] && build=0
out="$repo/image-build/out"
mkdir -p "$out"

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "appliance-deb: installing cargo-deb (crates.io)" >&2
    cargo install cargo-deb --locked --version 3.8.0 >&2
fi

if [ "$build" = 1 ]; then
    echo "appliance-deb: building hotspot-gateway and hotspot-central (release)" >&2
    cargo build --release --locked -p hotspot-gateway -p hotspot-central >&2
fi

scripts/fetch-models.sh "$repo/models" >&2
variant=()
if compgen -G "$repo/models/*.onnx" >/dev/null; then
    echo "appliance-deb: packing face models: $(cd "$repo/models" && ls *.onnx | tr '\n' ' ')" >&2
    variant=(--variant models)
else
    echo "appliance-deb: NOTE: no models/*.onnx (run scripts/fetch-models.sh); packing without face models" >&2
fi

rm -f "$out"/hotspot-edge_*.deb
# cargo-deb prints the path of the package it wrote on stdout.
deb="$(cargo deb -p hotspot-gateway --no-build --locked "${variant[@]}" --output "$out" | tail -n 1)"
[ -f "$deb" ] || { echo "appliance-deb: cargo deb wrote no package" >&2; exit 1; }
echo "appliance-deb: $(dpkg-deb --field "$deb" Package Version | tr '\n' ' ')-> $deb" >&2
echo "$deb"
