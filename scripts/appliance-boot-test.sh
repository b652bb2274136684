#!/usr/bin/env bash
# Boot test of the appliance image under qemu with software emulation (TCG): provisions it with a stick image
# for a central that runs on this host, boots it, waits for the gateway's READY (systemd's "Started" line on
# the serial console), queries /healthz and /api/status and the broker's retained status through forwarded
# ports on 127.0.0.1, sends captures through the broker and waits for their local and central results, then
# powers the guest off (ACPI) and checks it went down cleanly. Prints PASS or FAIL and the timings.
#
# Usage: scripts/appliance-boot-test.sh [--external-broker] [IMAGE]   (default image-build/out/hotspot-edge.img)
#   --external-broker   provision the site broker (hotspot-mosquitto.service) instead of the embedded one
# Env:   KEEP_WORK=1 keeps the temporary folder; BOOT_TIMEOUT (s, default 420).
set -euo pipefail
source "$(dirname "$0")/appliance-lib.sh"
trap appliance_cleanup EXIT

image="$APPLIANCE_OUT/hotspot-edge.img"
provision_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --external-broker) provision_args+=(--external-broker); shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) image="$1"; shift ;;
    esac
done
boot_timeout="${BOOT_TIMEOUT:-420}"
site="boot-test"

appliance_tools
appliance_workdir
appliance_binaries
MQTT_PORT=$(free_port tcp); HTTP_PORT=$(free_port tcp); CENTRAL_PORT=$(free_port udp); METRICS_PORT=$(free_port tcp)
say "ports on 127.0.0.1: broker $MQTT_PORT, console $HTTP_PORT, metrics $METRICS_PORT, central (udp) $CENTRAL_PORT"

appliance_provision "$site" "$CENTRAL_PORT" "${provision_args[@]}"
central_start "$CENTRAL_PORT"
appliance_disk "$image"

serial="$WORK/serial.log"
vm_start "$serial"
say "booting $image (qemu pid $VM_PID, serial console in $serial)"
vm_wait_for 'hotspot-provision: installed the bundle' "$serial" "$boot_timeout"
say "provisioned from the stick after $(( $(date +%s) - VM_START )) s"
vm_wait_for 'hotspot-edge: gateway READY' "$serial" "$boot_timeout"
t_ready=$(( $(date +%s) - VM_START ))
say "gateway READY (Type=notify) $t_ready s after power-on"

wait_healthy 60
t_healthy=$(( $(date +%s) - VM_START ))
say "/healthz: $(http_get /healthz)"
say "console (HTTPS) /healthz: $(console_get /healthz)"

# The uplink comes up once the guest reaches central on the host (10.0.2.2 -> 127.0.0.1).
end=$(( $(date +%s) + 120 ))
until [ "$(status_field uplink)" = "up" ]; do
    [ "$(date +%s)" -lt "$end" ] || die "uplink not up within 120 s: $(http_get /api/status)"
    sleep 2
done
say "/api/status: $(http_get /api/status)"
say "broker, retained gateway status: $("$PYTHON" "$APPLIANCE_REPO/scripts/appliance-station.py" status --port "$MQTT_PORT")"

"$PYTHON" "$APPLIANCE_REPO/scripts/appliance-station.py" roundtrip --port "$MQTT_PORT" --count 3 --central \
    2>&1 | sed 's/^/  station: /' >&2 || die "captures through the appliance did not get both results"
t_roundtrip=$(( $(date +%s) - VM_START ))

vm_poweroff
grep -Eq 'reboot: Power down|System Power Off|Powering off' "$serial" || die "guest did not power off cleanly"
say "powered off cleanly"

# The image's 6 GiB disk ran as an 8 GiB one: the data partition (1.75 GiB in the image) and its filesystem must
# have grown to the end (3.75 GiB)
# (systemd-repart + x-systemd.growfs), and the filesystem must be clean after the shutdown.
qemu-img convert -O raw "$WORK/disk.qcow2" "$WORK/disk.raw"
read -r data_start data_sectors < <(sfdisk -J "$WORK/disk.raw" | "$PYTHON" -c '
import json, sys
p = [p for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p.get("name") == "hotspot-data"][0]
print(p["start"], p["size"])')
fs_bytes=$(dumpe2fs -h "$WORK/disk.raw?offset=$((data_start * 512))" 2>/dev/null \
    | awk -F: '/^Block count/ {c=$2} /^Block size/ {s=$2} END {printf "%.0f\n", c * s}')
part_bytes=$((data_sectors * 512))
say "data partition $((part_bytes >> 20)) MiB, its filesystem $((fs_bytes >> 20)) MiB"
[ "$part_bytes" -gt $((3 * 1024 * 1024 * 1024)) ] || die "data partition did not grow"
[ "$fs_bytes" -gt $((part_bytes - 16 * 1024 * 1024)) ] || die "data filesystem did not grow to its partition"
e2fsck -fn "$WORK/disk.raw?offset=$((data_start * 512))" >"$WORK/fsck.txt" 2>&1 \
    || die "data filesystem not clean after shutdown: $(tail -n 5 "$WORK/fsck.txt")"
rm -f "$WORK/disk.raw"
t_total=$(( $(date +%s) - APPLIANCE_T0 ))
echo "boot-test: PASS (ready ${t_ready} s after power-on, healthy ${t_healthy} s, captures round-trip done at ${t_roundtrip} s, whole test ${t_total} s)"
