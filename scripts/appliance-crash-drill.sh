#!/usr/bin/env bash
# Crash drill of the appliance image under qemu (TCG): two stations on the host publish captures over MQTT with TLS
# and their client certificates (enrolled by the box at its first boot through the provisioning stick, which
# carries the certificates back) through the forwarded station port (guest 8883) while the VM's plug is pulled
# (SIGKILL to qemu: the guest's page cache is lost, as on a power cut), CYCLES times. Then the box boots once more
# and a central on the host is started; the drill passes only if every capture that was acknowledged (the station
# received its local result, docs/station-protocol.md) reached central. Central stays off until then, so every
# acknowledged capture had to survive the power cuts in the gateway's store. The stick stays attached: later boots
# must find every station enrolled already, and no boot may report a provisioning error.
#
# Checks, with a clear PASS/FAIL line:
#   1. after each power cut and boot, /api/status backlog >= the captures acknowledged so far;
#   2. once central runs, the backlog drains to 0 and central's report holds every acknowledged capture_id.
#
# Usage: scripts/appliance-crash-drill.sh [--cycles N] [--min-acked N] [IMAGE]
# Env:   KEEP_WORK=1 keeps the temporary folder; BOOT_TIMEOUT (s, default 420).
set -euo pipefail
source "$(dirname "$0")/appliance-lib.sh"
trap appliance_cleanup EXIT

cycles=1
min_acked=40
image="$APPLIANCE_OUT/hotspot-edge.img"
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) cycles="$2"; shift 2 ;;
        --min-acked) min_acked="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) image="$1"; shift ;;
    esac
done
boot_timeout="${BOOT_TIMEOUT:-420}"
station="$APPLIANCE_REPO/scripts/appliance-station.py"

appliance_tools
appliance_workdir
appliance_binaries
STATION_PORT=$(free_port tcp); HTTP_PORT=$(free_port tcp); CENTRAL_PORT=$(free_port udp); METRICS_PORT=$(free_port tcp)
say "ports on 127.0.0.1: stations (MQTT over TLS) $STATION_PORT, console $HTTP_PORT, metrics $METRICS_PORT, central (udp) $CENTRAL_PORT (central off until the end)"
# The stations drill-0 and drill-1 (appliance-station.py stream --station drill), enrolled at the first boot.
stations=(drill-0 drill-1)
appliance_provision crash-drill "$CENTRAL_PORT" --station "${stations[0]}" --station "${stations[1]}"
appliance_disk "$image"
acked="$WORK/acked.txt"
published="$WORK/published.txt"
: >"$acked"
: >"$published"
problems=()  # checks that failed; reported at the end, after central's verdict, so that a run tells everything

boot() { # boot N
    vm_start "$WORK/serial-$1.log"
    if [ "$1" = 1 ]; then
        vm_wait_for 'hotspot-provision: stations enrolled: ' "$WORK/serial-1.log" "$boot_timeout"
        station_certs "${stations[@]}"
        say "boot 1: stations ${stations[*]} enrolled by the box; certificates read from the stick"
    else
        # The stick stays in: the box must find the bundle installed and every listed station enrolled already.
        vm_wait_for 'hotspot-provision: stations listed on the medium: all have their certificates' \
            "$WORK/serial-$1.log" "$boot_timeout"
    fi
    vm_wait_for 'hotspot-edge: gateway READY' "$WORK/serial-$1.log" "$boot_timeout"
    if grep -a 'hotspot-provision: ERROR' "$WORK/serial-$1.log"; then
        die "boot $1: provisioning reported an error (serial log above)"
    fi
    wait_healthy 60
    say "boot $1: gateway ready and healthy $(( $(date +%s) - VM_START )) s after power-on"
}

unique() { sort -u "$1" | grep -c . || true; }

for cycle in $(seq 1 "$cycles"); do
    boot "$cycle"
    before=$(unique "$acked")
    backlog=$(status_field backlog)
    say "boot $cycle: backlog $backlog, acknowledged so far $before"
    [ "$backlog" -ge "$before" ] || problems+=("boot $cycle: backlog $backlog < $before captures acknowledged before the power cut")

    "$PYTHON" "$station" stream --port "$STATION_PORT" --certs "$WORK/stations" --acked "$acked" \
        --published "$published" --station drill --stations "${#stations[@]}" --rate 5 --duration 900 >"$WORK/station-$cycle.out" 2>"$WORK/station-$cycle.log" &
    station_pid=$!
    APPLIANCE_PIDS+=("$station_pid")
    end=$(( $(date +%s) + 300 ))
    while [ $(( $(unique "$acked") - before )) -lt "$min_acked" ]; do
        [ "$(date +%s)" -lt "$end" ] || die "fewer than $min_acked captures acknowledged within 300 s"
        kill -0 "$station_pid" 2>/dev/null || die "station stopped: $(tail -n 5 "$WORK/station-$cycle.log")"
        sleep 0.5
    done
    # Pull the plug at a random moment while the stations keep publishing.
    sleep "$("$PYTHON" -c 'import random; print(round(random.uniform(0.2, 3.0), 2))')"
    vm_kill
    say "cycle $cycle: POWER CUT (qemu killed) with stations publishing"
    end=$(( $(date +%s) + 30 ))
    while kill -0 "$station_pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
    kill -KILL "$station_pid" 2>/dev/null || true
    wait "$station_pid" 2>/dev/null || true
    say "cycle $cycle: station counts $(tail -n 1 "$WORK/station-$cycle.out" 2>/dev/null); acknowledged in total $(unique "$acked")"
done

final=$((cycles + 1))
boot "$final"
n_acked=$(unique "$acked")
n_published=$(unique "$published")
backlog=$(status_field backlog)
say "after the last power cut: backlog $backlog, acknowledged $n_acked, published $n_published"
[ "$backlog" -ge "$n_acked" ] || problems+=("final boot: backlog $backlog < $n_acked acknowledged captures")

central_start "$CENTRAL_PORT"
say "central started; waiting for the backlog to drain"
end=$(( $(date +%s) + 600 ))
until [ "$(status_field backlog)" = "0" ]; do
    [ "$(date +%s)" -lt "$end" ] || die "backlog not drained within 600 s: $(http_get /api/status)"
    sleep 2
done
say "backlog drained: $(http_get /api/status)"
central_stop
"$CENTRAL" report --data-dir "$WORK/central" >"$WORK/report.json"
verdict_rc=0
"$PYTHON" - "$WORK/report.json" "$WORK/central.log" "$acked" "$published" >"$WORK/verdict.txt" <<'PY' || verdict_rc=$?
import json, sys
report = json.load(open(sys.argv[1]))
in_report = {c[0] for c in report["captures"]}
# Every submission central received, from its JSON log (written as it happens, so it holds even if central's own
# database missed its last writes): "answered" and "duplicate submission" events carry the capture_id.
submitted = set()
for line in open(sys.argv[2]):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    f = ev.get("fields", ev)
    if f.get("capture_id") and ("answered" in str(f.get("message")) or "duplicate" in str(f.get("message"))):
        submitted.add(f["capture_id"])
at_central = in_report | submitted
acked = {l.strip() for l in open(sys.argv[3]) if l.strip()}
published = {l.strip() for l in open(sys.argv[4]) if l.strip()}
missing = sorted(acked - at_central)
print(json.dumps({
    "acknowledged": len(acked),
    "published": len(published),
    "at_central": len(at_central),
    "in_central_report": len(in_report),
    "in_central_log": len(submitted),
    "acknowledged_missing_at_central": len(missing),
    "published_not_acknowledged_but_kept": len((published - acked) & at_central),
    "duplicates_received_by_central": report.get("duplicates_received"),
    "missing": missing[:20],
}))
sys.exit(1 if missing or not acked else 0)
PY
say "verdict: $(cat "$WORK/verdict.txt")"
vm_poweroff
t_total=$(( $(date +%s) - APPLIANCE_T0 ))
[ "$verdict_rc" = 0 ] || problems+=("acknowledged captures missing at central: $(cat "$WORK/verdict.txt")")
if [ ${#problems[@]} -gt 0 ]; then
    for p in "${problems[@]}"; do say "problem: $p"; done
    die "crash drill: ${#problems[@]} check(s) failed"
fi
echo "crash-drill: PASS ($cycles power cut(s) while publishing; all $n_acked acknowledged captures reached central; ${t_total} s)"
