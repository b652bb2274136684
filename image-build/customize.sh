#!/usr/bin/env bash
# mmdebstrap customize hook of build-image.sh: runs on the build host with the image's root folder as $1,
# after the Debian packages and hotspot-edge are installed. Only changes that are not plain files (those are in
# image-build/rootfs/) belong here.
set -euo pipefail
root="$1"
in_root() { chroot "$root" "$@"; }

# The appliance's units. hotspot-mosquitto runs only when /etc/hotspot/mosquitto.conf exists.
in_root systemctl enable hotspot-gateway.service hotspot-provision.service hotspot-mosquitto.service \
    systemd-networkd.service systemd-resolved.service systemd-timesyncd.service systemd-repart.service
in_root systemctl enable hotspot-banner.service
# No login prompts (root is locked and there are no other accounts): the console shows boot status and the
# gateway's banner instead, and systemd keeps printing its status lines (a getty on the console stops them).
in_root systemctl mask getty.target console-getty.service
# Debian's mosquitto would take port 1883 from the embedded broker; hotspot-mosquitto replaces it.
in_root systemctl mask mosquitto.service
# Nothing on the box reaches out on its own: no apt timers (the root is read-only anyway).
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer

# Unique per box: an empty machine-id makes systemd generate one at boot (kept in /run: the root is read-only).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# No password login anywhere (root stays locked); the box is run through its console and provisioning.
in_root passwd --lock root >/dev/null

# The configuration lives on the data partition (bind-mounted on /etc/hotspot, see /etc/fstab): seed it with the
# package's defaults, with the modes hotspot-edge's tmpfiles snippet gives.
install -d -m 0755 "$root/var/lib/hotspot-config"
cp -a "$root/etc/hotspot/." "$root/var/lib/hotspot-config/"
install -d -m 0750 -g 990 "$root/var/lib/hotspot-config/pki"

# Package databases belong to the root filesystem they describe, not to the data partition that outlives it
# (A/B updates): keep them on the root and leave a relative symlink in /var (relative, so that it also resolves
# from outside the chroot, where mmdebstrap's clean-up runs apt).
install -d "$root/usr/lib/hotspot-image/var"
for d in lib/dpkg lib/apt cache/debconf; do
    mkdir -p "$root/usr/lib/hotspot-image/var/$(dirname "$d")"
    mv "$root/var/$d" "$root/usr/lib/hotspot-image/var/$d"
    ln -s "../../usr/lib/hotspot-image/var/$d" "$root/var/$d"
done

# Image identity.
version="$(in_root dpkg-query -W -f '${Version}' hotspot-edge)"
cat >"$root/etc/hotspot-image-release" <<REL
IMAGE_ID=hotspot-edge
IMAGE_VERSION=$version
BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REL
