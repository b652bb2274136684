#!/usr/bin/env bash
# Builds the Hotspot Edge appliance: a bootable x86-64 (UEFI) disk image from Debian's packages (mmdebstrap)
# plus the project's own hotspot-edge .deb. See image-build/README.md and docs/appliance.md.
#
# Usage: image-build/build-image.sh [--deb FILE] [--out DIR] [--size SIZE] [--mirror URL]
#   --deb FILE    use this hotspot-edge .deb (default: build it with scripts/appliance-deb.sh; extra arguments
#                 for that script go in APPLIANCE_DEB_ARGS, e.g. --no-build)
#   --out DIR     where the image goes (default: image-build/out, ignored by git)
#   --size SIZE   disk image size (default 6G; sparse; the data partition grows to fill a bigger disk at boot)
#   --mirror URL  Debian mirror (default http://deb.debian.org/debian)
# Result: DIR/hotspot-edge.img (raw, GPT: ESP, root-a, root-b (empty), hotspot-data). Needs root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
out="$repo/image-build/out"
deb=""
size="6G"
mirror="http://deb.debian.org/debian"
suite="bookworm"
while [ $# -gt 0 ]; do
    case "$1" in
        --deb) deb="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --size) size="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "build-image: $*" >&2; }
t0=$(date +%s)
step_start=$t0
step() { local now; now=$(date +%s); say "[$((now - step_start)) s] done; next: $*"; step_start=$now; }

[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap --mode=root, file ownership in the filesystems)"; exit 1; }

# Host tools, all from Debian.
missing=()
for t in mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs mkfs.vfat:dosfstools mcopy:mtools sfdisk:fdisk; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing host tools: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$out"
if [ -z "$deb" ]; then
    say "building the hotspot-edge package"
    # shellcheck disable=SC2086
    deb="$("$repo/scripts/appliance-deb.sh" ${APPLIANCE_DEB_ARGS:-})"
fi
[ -f "$deb" ] || { say "no such package: $deb"; exit 1; }
deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
say "package: $deb"

work="$(mktemp -d "$out/work.XXXXXX")"
cleanup() {
    # mmdebstrap unmounts what it mounted; a failure in between may leave mounts in the root folder.
    for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# 1. The root filesystem. The overlay goes in once the essential packages are there (so the initramfs and the
#    sysusers settings apply when the kernel and hotspot-edge are installed) and again at the end.
packages=(
    systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd
    linux-image-amd64 initramfs-tools zstd systemd-boot-efi
    e2fsprogs dosfstools kmod iproute2 procps ca-certificates
    mosquitto
)
# Downloaded packages are kept in $out/apt-cache for the next build (APPLIANCE_APT_CACHE= to place it elsewhere).
cache="${APPLIANCE_APT_CACHE:-$out/apt-cache}"
mkdir -p "$cache"
say "mmdebstrap $suite from $mirror (${packages[*]})"
mmdebstrap --mode=root --variant=minbase --format=directory \
    --dpkgopt=force-unsafe-io --skip=download/empty \
    --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
    --setup-hook="sync-in $cache /var/cache/apt/archives" \
    --customize-hook="sync-out /var/cache/apt/archives $cache" \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --essential-hook="sync-in $here/rootfs /" \
    --customize-hook="sync-in $here/rootfs /" \
    --customize-hook="copy-in $deb /tmp" \
    --customize-hook="chroot \"\$1\" dpkg -i /tmp/$(basename "$deb")" \
    --customize-hook="rm -f \"\$1/tmp/$(basename "$deb")\"" \
    --customize-hook="'$here/customize.sh' \"\$1\"" \
    "$suite" "$work/rootfs" "$mirror" >&2
root="$work/rootfs"
kver="$(basename "$(ls -d "$root"/usr/lib/modules/* | sort -V | tail -n 1)")"
version="$(sed -n 's/^IMAGE_VERSION=//p' "$root/etc/hotspot-image-release")"
step "filesystems (kernel $kver, hotspot-edge $version)"

# 2. Split: /var becomes the data partition; the root keeps an empty /var as the mount point.
mv "$root/var" "$work/var"
mkdir -m 0755 "$root/var"

# 3. Partition table (GPT). Sizes in 512-byte sectors; both root slots the same size so an update can write
#    either one.
sector=512
esp_start=2048;  esp_size=$((256 * 1024 * 1024 / sector))
root_size=$((2 * 1024 * 1024 * 1024 / sector))
ra_start=$((esp_start + esp_size))
rb_start=$((ra_start + root_size))
data_start=$((rb_start + root_size))
truncate -s 0 "$work/disk.img"
truncate -s "$size" "$work/disk.img"
total=$(( $(stat -c %s "$work/disk.img") / sector ))
data_size=$((total - 34 - data_start))
[ "$data_size" -gt $((512 * 1024 * 1024 / sector)) ] || { say "--size $size leaves under 512 MiB for data"; exit 1; }
sfdisk --quiet "$work/disk.img" >&2 <<EOF
label: gpt
first-lba: 2048
start=$esp_start, size=$esp_size, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
start=$ra_start, size=$root_size, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root-a"
start=$rb_start, size=$root_size, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root-b"
start=$data_start, size=$data_size, type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, name="hotspot-data"
EOF

# 4. The ESP: systemd-boot and slot A's kernel and initramfs. Slot B's entry is written by an update.
esp="$work/esp.img"
mkfs.vfat -F 32 -n ESP -C "$esp" $((esp_size * sector / 1024)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/hotspot-a
mcopy -i "$esp" "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/boot/vmlinuz-$kver" ::/hotspot-a/vmlinuz
mcopy -i "$esp" "$root/boot/initrd.img-$kver" ::/hotspot-a/initrd.img
cat >"$work/loader.conf" <<EOF
# No menu (hold a key at power-on to get one), no editing of the kernel command line from the keyboard.
timeout 0
default hotspot-*
editor no
EOF
cat >"$work/hotspot-a.conf" <<EOF
title Hotspot Edge $version (slot A)
version $version
linux /hotspot-a/vmlinuz
initrd /hotspot-a/initrd.img
options root=PARTLABEL=root-a ro rootfstype=ext4 rootwait console=tty0 console=ttyS0,115200n8 panic=10 fsck.repair=yes systemd.show_status=true
EOF
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/hotspot-a.conf" ::/loader/entries/hotspot-a.conf

# 5. Filesystems from the folders (no loop devices, no mounts), then into the disk image.
mkfs.ext4 -q -F -L root-a -d "$root" "$work/root-a.img" $((root_size * sector / 1024))k >&2
mkfs.ext4 -q -F -L hotspot-data -d "$work/var" "$work/data.img" $((data_size * sector / 1024))k >&2
step "disk image"
dd if="$esp" of="$work/disk.img" bs=1M seek=$((esp_start * sector / 1048576)) conv=notrunc,sparse status=none
dd if="$work/root-a.img" of="$work/disk.img" bs=1M seek=$((ra_start * sector / 1048576)) conv=notrunc,sparse status=none
dd if="$work/data.img" of="$work/disk.img" bs=1M seek=$((data_start * sector / 1048576)) conv=notrunc,sparse status=none

mv "$work/disk.img" "$out/hotspot-edge.img"
cp "$deb" "$out/" 2>/dev/null || true
printf 'IMAGE=hotspot-edge.img\nVERSION=%s\nKERNEL=%s\nBUILD_SECONDS=%s\n' "$version" "$kver" "$(( $(date +%s) - t0 ))" \
    >"$out/hotspot-edge.img.info"
step "finished"
say "image: $out/hotspot-edge.img ($(du -h --apparent-size "$out/hotspot-edge.img" | cut -f1) apparent," \
    "$(du -h "$out/hotspot-edge.img" | cut -f1) on disk), built in $(( $(date +%s) - t0 )) s"
echo "$out/hotspot-edge.img"
