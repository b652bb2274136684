#!/usr/bin/env bash
# Boot test of the appliance image under qemu with software emulation (TCG): provisions it with a stick image
# for a central that runs on this host and one station to enrol, boots it, waits for the bundle to be installed,
# the station's certificate to be written onto the stick and the gateway's READY (the image's banner on the
# serial console), then through forwarded ports on 127.0.0.1: /healthz and /api/status on the metrics listener,
# the HTTPS console's /healthz and login page, the broker's retained status read by the station over TLS with its
# certificate, a client without a certificate refused, captures sent by the station over TLS with their local
# and central results; then powers the guest off (ACPI), checks it went down cleanly and that the data partition
# grew and is clean. Prints PASS or FAIL and the timings.
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
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) image="$1"; shift ;;
    esac
done
boot_timeout="${BOOT_TIMEOUT:-420}"
site="boot-test"
station_id="boot-test"
station=("$PYTHON" "$APPLIANCE_REPO/scripts/appliance-station.py")

appliance_tools
appliance_workdir
appliance_binaries
STATION_PORT=$(free_port tcp); HTTP_PORT=$(free_port tcp); CENTRAL_PORT=$(free_port udp); METRICS_PORT=$(free_port tcp)
say "ports on 127.0.0.1: stations (MQTT over TLS) $STATION_PORT, console $HTTP_PORT, metrics $METRICS_PORT, central (udp) $CENTRAL_PORT"

appliance_provision "$site" "$CENTRAL_PORT" --station "$station_id" "${provision_args[@]}"
central_start "$CENTRAL_PORT"
appliance_disk "$image"

serial="$WORK/serial.log"
vm_start "$serial"
say "booting $image (qemu pid $VM_PID, serial console in $serial)"
vm_wait_for 'hotspot-provision: installed the bundle' "$serial" "$boot_timeout"
say "provisioned from the stick after $(( $(date +%s) - VM_START )) s"
vm_wait_for 'hotspot-provision: stations enrolled: ' "$serial" "$boot_timeout"
station_certs "$station_id"
say "station $station_id enrolled by the box; its certificate read from the stick: $(openssl x509 -noout -subject \
    -in "$WORK/stations/$station_id/$station_id.pem" 2>/dev/null || echo "$station_id.pem")"
vm_wait_for 'hotspot-edge: gateway READY' "$serial" "$boot_timeout"
t_ready=$(( $(date +%s) - VM_START ))
say "gateway READY (Type=notify) $t_ready s after power-on"
grep -a 'hotspot-provision: ERROR' "$serial" && die "provisioning reported an error (serial log above)"

wait_healthy 60
t_healthy=$(( $(date +%s) - VM_START ))
say "/healthz: $(http_get /healthz)"
say "console (HTTPS) /healthz: $(console_get /healthz)"
console_login_page
say "console (HTTPS) /login: 200 with the login form"

# The uplink comes up once the guest reaches central on the host (10.0.2.2 -> 127.0.0.1).
end=$(( $(date +%s) + 120 ))
until [ "$(status_field uplink)" = "up" ]; do
    [ "$(date +%s)" -lt "$end" ] || die "uplink not up within 120 s: $(http_get /api/status)"
    sleep 2
done
say "/api/status: $(http_get /api/status)"
gw_status="$("${station[@]}" status --port "$STATION_PORT" --certs "$WORK/stations" --station "$station_id")" \
    || die "station $station_id could not read the retained gateway status over TLS"
say "broker (TLS, station certificate), retained gateway status: $gw_status"
"${station[@]}" refused --port "$STATION_PORT" --certs "$WORK/stations" --station "$station_id" \
    2>&1 | sed 's/^/  station: /' >&2 || die "the broker did not refuse what it must refuse"

"${station[@]}" roundtrip --port "$STATION_PORT" --certs "$WORK/stations" --station "$station_id" --count 3 --central \
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

# The station CA the box made when it enrolled the station (on the data partition, mounted on /var): the gateway's
# files (uid/gid 990), private (folder 0700, key and registry 0600), and the issue in the audit log.
data="$WORK/disk.raw?offset=$((data_start * 512))"
owner_mode() { # PATH on the data partition -> "uid gid mode"
    debugfs -R "stat $1" "$data" 2>/dev/null | awk '/Mode:/ {for (i = 1; i < NF; i++) if ($i == "Mode:") m = $(i + 1)}
        /User:/ {for (i = 1; i < NF; i++) {if ($i == "User:") u = $(i + 1); if ($i == "Group:") g = $(i + 1)}}
        END {print u, g, m}'
}
for want in "/lib/hotspot/stations 0700" "/lib/hotspot/stations/ca.key 0600" "/lib/hotspot/stations/stations.json 0600"; do
    got="$(owner_mode "${want% *}")"
    [ "$got" = "990 990 ${want#* }" ] || die "${want% *} on the data partition: uid gid mode '$got', want '990 990 ${want#* }'"
done
debugfs -R "cat /lib/hotspot/audit.log" "$data" 2>/dev/null >"$WORK/audit.txt"
grep '"action":"station.issued"' "$WORK/audit.txt" | grep '"subject":"'"$station_id"'"' \
    | grep -q '"actor":"cli:hotspot-provision"' || die "no station.issued for $station_id in the gateway's audit log"
say "station CA on the data partition: hotspot's (990:990), folder 0700, key and registry 0600; issue audited"
rm -f "$WORK/disk.raw"
t_total=$(( $(date +%s) - APPLIANCE_T0 ))
echo "boot-test: PASS (ready ${t_ready} s after power-on, healthy ${t_healthy} s, captures round-trip done at ${t_roundtrip} s, whole test ${t_total} s)"
