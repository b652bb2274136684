# shellcheck shell=bash
# Shared by scripts/appliance-boot-test.sh and scripts/appliance-crash-drill.sh (sourced, not run).
# qemu with software emulation (TCG), UEFI (OVMF), user networking with ports forwarded to 127.0.0.1 only, a
# central on the host reached from the guest at 10.0.2.2 (qemu's alias for the host's loopback).
# Everything a test starts is recorded and stopped by appliance_cleanup (trap it on EXIT).

APPLIANCE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APPLIANCE_OUT="${APPLIANCE_OUT:-$APPLIANCE_REPO/image-build/out}"
APPLIANCE_PIDS=()
APPLIANCE_T0=$(date +%s)
# Debian's python (with python3-paho-mqtt), not whatever python3 comes first on PATH. The stations speak MQTT over TLS
# with the client certificates the guest wrote onto the provisioning medium (station_certs).
PYTHON=/usr/bin/python3

say() { echo "[$(( $(date +%s) - APPLIANCE_T0 )) s] $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

# Host tools: python3-paho-mqtt, curl, ovmf from apt; qemu-system-x86 unpacked from Debian's .debs into
# $APPLIANCE_OUT/qemu (the distribution's package conflicts with newer qemu-utils on some hosts), unless a working
# qemu-system-x86_64 is on PATH.
appliance_tools() {
    local need=()
    "$PYTHON" -c 'import paho.mqtt.client' 2>/dev/null || need+=(python3-paho-mqtt)
    command -v curl >/dev/null || need+=(curl)
    command -v qemu-img >/dev/null || need+=(qemu-utils)
    command -v mkfs.vfat >/dev/null || need+=(dosfstools)
    command -v mcopy >/dev/null || need+=(mtools)
    [ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    fi
    if command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 --version >/dev/null 2>&1; then
        QEMU=(qemu-system-x86_64)
        return
    fi
    local q="$APPLIANCE_OUT/qemu"
    if [ ! -x "$q/root/usr/bin/qemu-system-x86_64" ]; then
        say "unpacking qemu-system-x86 from Debian's packages into $q"
        rm -rf "$q" && mkdir -p "$q/debs"
        (cd "$q/debs" && apt-get download -q qemu-system-x86 qemu-system-data qemu-system-common \
            libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2 libndctl6 libdaxctl1 \
            libnl-3-200 libnl-route-3-200 >&2) || die "apt-get download of qemu failed (run apt-get update?)"
        for d in "$q"/debs/*.deb; do dpkg -x "$d" "$q/root"; done
        rm -rf "$q/debs"
    fi
    QEMU=(env "LD_LIBRARY_PATH=$q/root/usr/lib/x86_64-linux-gnu:$q/root/lib/x86_64-linux-gnu"
        "$q/root/usr/bin/qemu-system-x86_64" -L "$q/root/usr/share/qemu" -L "$q/root/usr/share/seabios")
    "${QEMU[@]}" --version >/dev/null || die "the unpacked qemu does not run"
}

# A free port on 127.0.0.1 (tcp or udp).
free_port() {
    "$PYTHON" - "$1" <<'PY'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# appliance_workdir: a temporary folder under $APPLIANCE_OUT (same filesystem as the image), removed on exit.
appliance_workdir() {
    mkdir -p "$APPLIANCE_OUT"
    WORK="$(mktemp -d "$APPLIANCE_OUT/test.XXXXXX")"
}

# The binaries that are in the image: unpacked from the .deb next to it.
appliance_binaries() {
    local deb
    deb="$(ls -t "$APPLIANCE_OUT"/hotspot-edge_*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || die "no hotspot-edge .deb in $APPLIANCE_OUT (run image-build/build-image.sh)"
    dpkg-deb -x "$deb" "$WORK/deb"
    CENTRAL="$WORK/deb/usr/bin/hotspot-central"
    [ -x "$CENTRAL" ] || die "$deb has no hotspot-central"
}

# appliance_disk IMAGE: a qcow2 overlay of the built image (the image itself is never written), 8 GiB so that the
# data partition's growth at first boot is exercised too.
appliance_disk() {
    local img="$1"
    [ -f "$img" ] || die "no image $img (run image-build/build-image.sh)"
    qemu-img create -q -f qcow2 -b "$img" -F raw "$WORK/disk.qcow2" 8G
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/ovmf-vars.fd"
}

# appliance_provision SITE CENTRAL_PORT [extra args]: PKI in $WORK/pki and the stick image $WORK/prov.img.
# Extra args may be --station ID (the guest enrols it at first boot: station_certs) and the options of
# appliance-provision.sh.
appliance_provision() {
    local site="$1" port="$2"
    shift 2
    # The metrics listener (/healthz, /api/status) on the guest's network, for the port forward of vm_start.
    "$APPLIANCE_REPO/scripts/appliance-provision.sh" --pki "$WORK/pki" --site "$site" \
        --central "10.0.2.2:$port" --out "$WORK/prov.img" --central-bin "$CENTRAL" \
        --metrics-listen 0.0.0.0:9464 "$@" 2>&1 | sed 's/^/  /' >&2
}

# central_start PORT: hotspot-central serve on 127.0.0.1:PORT (UDP), data in $WORK/central, JSON log (one event per
# line, written as it happens) in $WORK/central.log.
central_start() {
    local port="$1"
    mkdir -p "$WORK/central"
    "$CENTRAL" --log-json serve --data-dir "$WORK/central" --listen "127.0.0.1:$port" --pki "$WORK/pki" \
        >"$WORK/central.out" 2>>"$WORK/central.log" &
    CENTRAL_PID=$!
    APPLIANCE_PIDS+=("$CENTRAL_PID")
    for _ in $(seq 1 100); do
        grep -q '"event":"ready"' "$WORK/central.out" 2>/dev/null && return 0
        kill -0 "$CENTRAL_PID" 2>/dev/null || die "central exited: $(tail -n 5 "$WORK/central.log")"
        sleep 0.1
    done
    die "central not ready within 10 s"
}

# central_stop: SIGTERM, then SIGKILL after 30 s (said so: central's own database may then miss its last writes).
central_stop() {
    [ -n "${CENTRAL_PID:-}" ] || return 0
    kill -TERM "$CENTRAL_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$CENTRAL_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$CENTRAL_PID" 2>/dev/null; then
        say "central did not stop within 30 s of SIGTERM; killing it"
        kill -KILL "$CENTRAL_PID" 2>/dev/null || true
    fi
    wait "$CENTRAL_PID" 2>/dev/null || true
    CENTRAL_PID=""
}

# station_certs: the station certificates the guest wrote onto the provisioning medium at its first boot
# (hotspot/stations/ID/{ID.pem,ID.key,ca.pem}, `hotspot-gateway station add` on the box), copied to $WORK/stations
# for appliance-station.py --certs. Read from the stick image while the guest runs: the guest unmounted the medium
# before saying "stations enrolled", and qemu writes a raw image straight through to the file.
station_certs() {
    rm -rf "$WORK/stations"
    mcopy -s -n -i "$WORK/prov.img" ::/hotspot/stations "$WORK/" || die "no hotspot/stations on the medium"
    chmod -R go-rwx "$WORK/stations"
    local id
    for id in "$@"; do
        if [ ! -s "$WORK/stations/$id/$id.pem" ] || [ ! -s "$WORK/stations/$id/$id.key" ] \
            || [ ! -s "$WORK/stations/$id/ca.pem" ]; then
            die "the guest wrote no certificate for station $id onto the medium"
        fi
    done
}

# vm_start SERIAL_LOG: boots $WORK/disk.qcow2 (+ $WORK/prov.img as a second disk when present: writable, because the
# guest writes the certificates of the stations it enrols onto it). STATION_PORT, HTTP_PORT and METRICS_PORT on
# 127.0.0.1 forward to the guest's 8883 (the stations' MQTT over TLS: the embedded broker's station listener or
# mosquitto), 8080 (HTTPS console) and 9464 (plain-HTTP metrics listener: /healthz, /api/status). The plain MQTT
# port 1883 is not forwarded: the embedded broker listens on the guest's loopback only.
vm_start() {
    local log="$1"
    local prov=()
    [ -f "$WORK/prov.img" ] && prov=(-drive "file=$WORK/prov.img,format=raw,if=virtio")
    : >"$log"
    "${QEMU[@]}" -name hotspot-edge-test -machine q35 -accel tcg -cpu max -smp 2 -m 1536 \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" \
        -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd" \
        -drive "file=$WORK/disk.qcow2,format=qcow2,if=virtio,cache=writeback" \
        "${prov[@]}" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$STATION_PORT-:8883,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080,hostfwd=tcp:127.0.0.1:$METRICS_PORT-:9464" \
        -device virtio-net-pci,netdev=n0,romfile= \
        -monitor "unix:$WORK/monitor.sock,server=on,wait=off" \
        -serial "file:$log" -display none -nodefaults -no-user-config \
        >>"$WORK/qemu.log" 2>&1 &
    VM_PID=$!
    APPLIANCE_PIDS+=("$VM_PID")
    # shellcheck disable=SC2034  # read by the scripts that source this file
    VM_START=$(date +%s)
}

vm_running() { [ -n "${VM_PID:-}" ] && kill -0 "$VM_PID" 2>/dev/null; }

monitor() {
    "$PYTHON" - "$WORK/monitor.sock" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.5)
s.close()
PY
}

# vm_wait_for PATTERN LOG TIMEOUT: waits for an extended regex in the serial log.
vm_wait_for() {
    local pattern="$1" log="$2" timeout="$3" end=$(( $(date +%s) + $3 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        grep -Eq "$pattern" "$log" 2>/dev/null && return 0
        vm_running || die "qemu exited while waiting for /$pattern/ (serial log: $log)"
        sleep 1
    done
    die "no /$pattern/ on the serial console within $timeout s (last lines: $(tail -n 5 "$log" | tr -d '\r'))"
}

# vm_poweroff: ACPI power button, bounded wait, then hard stop.
vm_poweroff() {
    vm_running || return 0
    monitor system_powerdown || true
    local end=$(( $(date +%s) + 90 ))
    while vm_running && [ "$(date +%s)" -lt "$end" ]; do sleep 1; done
    if vm_running; then
        say "guest did not power off within 90 s; stopping qemu"
        kill -KILL "$VM_PID" 2>/dev/null || true
    fi
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=""
}

# vm_kill: pulls the plug (SIGKILL to qemu: the guest's page cache and anything not flushed to the virtual disk
# are gone, as on a power cut).
vm_kill() {
    vm_running || return 0
    kill -KILL "$VM_PID"
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=""
}

# http_get PATH: the guest's metrics listener (/healthz, /api/status, /metrics) through the forwarded port; prints
# the body, returns curl's status.
http_get() { curl -fsS --max-time 10 "http://127.0.0.1:$METRICS_PORT$1"; }

# console_get PATH: the guest's HTTPS console (self-signed certificate: -k); /healthz and /login answer without login.
console_get() { curl -fsSk --max-time 10 "https://127.0.0.1:$HTTP_PORT$1"; }

# console_login_page: the console's login page over HTTPS must answer 200 with its password form.
console_login_page() {
    local code
    code=$(curl -sSk --max-time 10 -o "$WORK/login.html" -w '%{http_code}' "https://127.0.0.1:$HTTP_PORT/login") \
        || die "console https://127.0.0.1:$HTTP_PORT/login did not answer"
    [ "$code" = 200 ] || die "console /login answered HTTP $code, not 200"
    grep -q 'name=password' "$WORK/login.html" || die "console /login has no password form: $(head -c 300 "$WORK/login.html")"
}

# wait_healthy TIMEOUT: until /healthz answers 200.
wait_healthy() {
    local end=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        http_get /healthz >/dev/null 2>&1 && return 0
        vm_running || die "qemu exited while waiting for /healthz"
        sleep 1
    done
    die "/healthz not 200 within $1 s"
}

# status_field NAME: one field of /api/status (JSON).
status_field() { http_get /api/status | "$PYTHON" -c "import json,sys; print(json.load(sys.stdin).get('$1'))"; }

appliance_cleanup() {
    local rc=$?
    local p
    for p in "${APPLIANCE_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${APPLIANCE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        if [ "$rc" != 0 ] && [ -z "${KEEP_WORK:-}" ]; then
            mkdir -p "$APPLIANCE_OUT/last-failure"
            cp "$WORK"/*.log "$WORK"/*.out "$WORK"/*.txt "$APPLIANCE_OUT/last-failure/" 2>/dev/null || true
            say "logs of the failed run kept in $APPLIANCE_OUT/last-failure/"
        fi
        if [ -n "${KEEP_WORK:-}" ]; then say "work folder kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
