#!/usr/bin/env bash
# Runs every cargo-fuzz target of the given fuzz crates for SECONDS each (default 600), one after the other, and
# fails at the first crash. Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
#
# Usage: scripts/fuzz.sh [SECONDS] [CRATE_DIR ...]   (default crates: device-protocols/fuzz matcher/fuzz)
# Corpora stay in <crate>/fuzz/corpus/<target> (ignored by git), so later runs continue from them; findings go to
# <crate>/fuzz/artifacts/<target>. A summary line per target is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
crates=("$@")
[ "${#crates[@]}" -gt 0 ] || crates=(device-protocols/fuzz matcher/fuzz)
summary=()
for crate in "${crates[@]}"; do
    for target in $(cd "$crate" && cargo +nightly fuzz list); do
        echo "fuzz: $crate $target for ${seconds}s" >&2
        log="$(mktemp)"
        if (cd "$crate" && cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=4096) >"$log" 2>&1; then
            runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1 || true)"
            summary+=("$crate $target: ok (${runs:-no run count} in ${seconds}s)")
        else
            tail -n 40 "$log" >&2
            echo "fuzz: $crate $target FAILED (log $log)" >&2
            exit 1
        fi
        rm -f "$log"
    done
done
printf '%s\n' "${summary[@]}"
