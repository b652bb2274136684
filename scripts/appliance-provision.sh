#!/usr/bin/env bash
# Makes a provisioning medium for one appliance (docs/appliance.md, "Provisioning"): a small FAT image labelled
# HOTSPOTPROV holding hotspot/gateway.toml and hotspot/pki/{ca.pem,gateway.pem,gateway.key}, for `dd` onto a
# USB stick (or to attach as a second disk to a VM). The gateway certificate is issued with
# `hotspot-central pki issue-gateway` from the CA in --pki (made with `hotspot-central pki init` if absent). The
# gateway trusts the watchlist/plugin signing key in --keys (default DIR/signing; made with
# `hotspot-central keys init` if absent), plus any --trusted-key given (e.g. the next key during a rotation).
# Each --station ID is listed in hotspot/stations/enrol: at boot the box issues that station's certificate from its
# own station CA and writes it back to the medium, into hotspot/stations/ID/{ID.pem,ID.key,ca.pem}
# (docs/appliance.md, "Enrolling stations"); the medium must then stay writable (no write-protect switch).
#
# Usage: scripts/appliance-provision.sh --pki DIR --site ID --central HOST:PORT --out FILE.img
#            [--server-name NAME] [--external-broker] [--central-bin PATH] [--console-listen ADDR]
#            [--metrics-listen ADDR] [--keys DIR] [--trusted-key ed25519:...]... [--station ID]...
#            [--broker-name NAME]...
#   --station         a station to enrol (repeat); --broker-name a DNS name or IP address stations use to reach the
#   box (repeat), put into the broker's TLS certificate (localhost and 127.0.0.1 are always in it)
#   --console-listen  the HTTPS console (default 0.0.0.0:8080); --metrics-listen the plain-HTTP /metrics, /healthz
#   and /api/status, without login (default 127.0.0.1:9464: only the box itself; docs/metrics.md)
set -euo pipefail

pki="" site="" central="" outimg="" server_name="central" external=0 console_listen="0.0.0.0:8080" keys=""
metrics_listen="127.0.0.1:9464"
extra_keys=() stations=() broker_names=()
central_bin="${HOTSPOT_CENTRAL_BIN:-hotspot-central}"
while [ $# -gt 0 ]; do
    case "$1" in
        --pki) pki="$2"; shift 2 ;;
        --site) site="$2"; shift 2 ;;
        --central) central="$2"; shift 2 ;;
        --out) outimg="$2"; shift 2 ;;
        --server-name) server_name="$2"; shift 2 ;;
        --external-broker) external=1; shift ;;
        --central-bin) central_bin="$2"; shift 2 ;;
        --console-listen) console_listen="$2"; shift 2 ;;
        --metrics-listen) metrics_listen="$2"; shift 2 ;;
        --keys) keys="$2"; shift 2 ;;
        --trusted-key) extra_keys+=("$2"); shift 2 ;;
        --station) stations+=("$2"); shift 2 ;;
        --broker-name) broker_names+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "appliance-provision: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in pki site central outimg; do
    [ -n "${!v}" ] || { echo "appliance-provision: --${v/outimg/out} is required (see --help)" >&2; exit 2; }
done
[[ "$site" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "appliance-provision: bad site id '$site'" >&2; exit 2; }
for s in "${stations[@]}"; do
    [[ "$s" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "appliance-provision: bad station id '$s'" >&2; exit 2; }
done
for n in "${broker_names[@]}"; do
    [[ "$n" =~ ^[A-Za-z0-9.:-]{1,253}$ ]] || { echo "appliance-provision: bad broker name '$n'" >&2; exit 2; }
done
for t in mkfs.vfat mcopy; do
    command -v "$t" >/dev/null || { echo "appliance-provision: needs $t (apt-get install dosfstools mtools)" >&2; exit 1; }
done
repo="$(cd "$(dirname "$0")/.." && pwd)"

[ -f "$pki/ca.pem" ] || "$central_bin" pki init --dir "$pki" >&2
[ -f "$pki/$site.pem" ] || "$central_bin" pki issue-gateway --dir "$pki" --name "$site" >&2
keys="${keys:-$pki/signing}"
[ -f "$keys/signing.pub" ] || "$central_bin" keys init --dir "$keys" >&2
trusted="\"$(tr -d '[:space:]' <"$keys/signing.pub")\""
for k in "${extra_keys[@]}"; do trusted="$trusted, \"$k\""; done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/hotspot/pki"
cp "$pki/ca.pem" "$stage/hotspot/pki/ca.pem"
cp "$pki/$site.pem" "$stage/hotspot/pki/gateway.pem"
cp "$pki/$site.key" "$stage/hotspot/pki/gateway.key"
if [ "$external" = 1 ]; then
    # mosquitto with TLS and the ACL (packaging/mosquitto.conf); its server certificate comes from
    # `hotspot-gateway station broker-cert` on the box (docs/configuration.md, "Station authentication").
    broker='mode = "external"
url = "mqtts://127.0.0.1:8883"'
    cp "$repo/packaging/mosquitto.conf" "$stage/hotspot/mosquitto.conf"
    # The box issues mosquitto's certificate at provisioning (`station broker-cert`) for these names.
    [ ${#broker_names[@]} -gt 0 ] && printf '%s\n' "${broker_names[@]}" >"$stage/hotspot/broker-names"
else
    # Stations connect over TLS with a certificate each (`hotspot-gateway station add`); rumqttd itself stays on
    # loopback for the gateway.
    broker='mode = "embedded"
listen = "127.0.0.1:1883"
tls_listen = "0.0.0.0:8883"'
    if [ ${#broker_names[@]} -gt 0 ]; then
        broker="$broker
tls_server_names = [$(printf '"%s", ' "${broker_names[@]}" | sed 's/, $//')]"
    fi
fi
if [ ${#stations[@]} -gt 0 ]; then
    mkdir -p "$stage/hotspot/stations"
    { echo "# Stations to enrol: the box writes each one's certificate into hotspot/stations/ID/ at boot."
      printf '%s\n' "${stations[@]}"; } >"$stage/hotspot/stations/enrol"
fi
cat >"$stage/hotspot/gateway.toml" <<EOF
# Written by scripts/appliance-provision.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) for site $site.
[site]
id = "$site"

[broker]
$broker

[uplink]
central = "$central"
server_name = "$server_name"
ca = "/etc/hotspot/pki/ca.pem"
cert = "/etc/hotspot/pki/gateway.pem"
key = "/etc/hotspot/pki/gateway.key"

[watchlist]
# Public keys whose signatures the gateway accepts on watchlist and plugin bundles.
trusted_keys = [$trusted]

[plugins]
backend = "pulley"

[storage]
dir = "/var/lib/hotspot"

[console]
listen = "$console_listen"

[metrics]
listen = "$metrics_listen"
EOF

rm -f "$outimg"
mkfs.vfat -n HOTSPOTPROV -C "$outimg" 8192 >/dev/null
mcopy -s -i "$outimg" "$stage/hotspot" ::/
echo "appliance-provision: $outimg: site $site, central $central$([ "$external" = 1 ] && echo ', external broker')$([ ${#stations[@]} -gt 0 ] && echo ", stations to enrol: ${stations[*]}")" >&2
