#!/usr/bin/env bash
# The whole appliance pipeline in one command (as root): package, image, boot test, and with --drill the crash
# drill too. Timings of each step at the end. See docs/appliance.md ("Tests and timings").
#
# Usage: scripts/appliance-all.sh [--drill] [--no-build]
#   --no-build   package the binaries already in $CARGO_TARGET_DIR/release instead of running cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
drill=0 deb_args=()
for a in "$@"; do
    case "$a" in
        --drill) drill=1 ;;
        --no-build) deb_args+=(--no-build) ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "appliance-all: unknown argument $a" >&2; exit 2 ;;
    esac
done
timings=()
timed() { # name command...
    local name="$1" t0
    shift
    t0=$(date +%s)
    "$@"
    timings+=("$name: $(( $(date +%s) - t0 )) s")
}
timed "package (scripts/appliance-deb.sh)" scripts/appliance-deb.sh "${deb_args[@]}" >/dev/null
deb="$(ls -t image-build/out/hotspot-edge_*.deb | head -n 1)"
timed "image (image-build/build-image.sh)" image-build/build-image.sh --deb "$deb" >/dev/null
timed "boot test" scripts/appliance-boot-test.sh
[ "$drill" = 1 ] && timed "crash drill" scripts/appliance-crash-drill.sh
printf 'appliance-all: %s\n' "${timings[@]}"
