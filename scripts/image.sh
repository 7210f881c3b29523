#!/usr/bin/env bash
# The appliance image: a bootable disk an operator writes to a server's boot disk.
#
#   scripts/image.sh build [OUT_DIR]        build OUT_DIR/gigacompute.img (default target/image)
#   scripts/image.sh flash IMAGE DEVICE     write an image to a whole disk (refuses one in use)
#   scripts/image.sh test [OUT_DIR]         boot it under qemu (TCG) and test it from the host
#   scripts/image.sh bench [RUNS]           size, build time, boot-to-serving -> BENCHMARKS.md
#
# The image (raw, GPT; GRUB for BIOS and UEFI) is Debian 12 from Debian's own packages
# (mmdebstrap), the gigacompute binary and its systemd units. Partitions:
#   1 bios_grub  GRUB's BIOS core          4 root_b    the other root slot (upgrades)
#   2 GCBOOT     ESP: GRUB, grubenv        5 GCCONFIG  FAT: the operator's config and ssh keys
#   3 root_a     ext4 root, mounted ro     6 gcdata    ext4 data dir, grown to the disk at boot
# Root is read-only; an upgrade writes root.img to the other slot and boots it once
# (gigacompute-upgrade), keeping it only if the appliance comes up. Everything is built
# without mounting anything: filesystems from directories (mke2fs -d, mtools), GRUB's BIOS
# boot code written in place.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# Sizes in MiB.
ESP_MB=64 ROOT_MB=1024 CONFIG_MB=32 DATA_MB=256
FEATURES="${IMAGE_FEATURES:-rocksdb-peer,dpdk}"

log() { printf '== image: %s\n' "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }

need_tools() {
    local need_apt=()
    command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
    command -v sgdisk >/dev/null || need_apt+=(gdisk)
    command -v mkfs.vfat >/dev/null || need_apt+=(dosfstools)
    command -v mcopy >/dev/null || need_apt+=(mtools)
    command -v mke2fs >/dev/null || need_apt+=(e2fsprogs)
    command -v zstd >/dev/null || need_apt+=(zstd)
    [ -d /usr/lib/grub/i386-pc ] || need_apt+=(grub-pc-bin)
    [ -d /usr/lib/grub/x86_64-efi ] || need_apt+=(grub-efi-amd64-bin)
    command -v grub-mkimage >/dev/null || need_apt+=(grub2-common)
    if [ "${1:-}" = test ]; then
        command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
        [ -e /usr/share/ovmf/OVMF.fd ] || need_apt+=(ovmf)
        command -v ssh >/dev/null || need_apt+=(openssh-client)
    fi
    source scripts/install-missing.sh
}

# The Debian packages the binary's shared libraries come from.
lib_packages() {
    local lib
    for lib in $(ldd "$1" | awk '/=>/ {print $3}'); do
        dpkg -S "*/$(basename "$lib")" 2>/dev/null | head -1 | cut -d: -f1
    done | sort -u
}

# Partition table: name, type, size (MiB; 0 = the rest).
PARTS=(
    "bios_grub EF02 1"
    "GCBOOT EF00 $ESP_MB"
    "root_a 8304 $ROOT_MB"
    "root_b 8304 $ROOT_MB"
    "GCCONFIG 0700 $CONFIG_MB"
    "gcdata 8300 $DATA_MB"
)

# Start sector of partition N (1-based) in the layout above.
part_start() {
    local n="$1" at=2048 i=1 p size
    for p in "${PARTS[@]}"; do
        [ "$i" -eq "$n" ] && { echo "$at"; return; }
        size="${p##* }"
        at=$((at + size * 2048))
        i=$((i + 1))
    done
    die "no partition $n"
}

build() {
    local out="${1:-target/image}" t0 bin work rootfs pkgs
    t0=$(date +%s)
    need_tools
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    log "binary (cargo build --release --features $FEATURES)"
    cargo build --release --locked --bin gigacompute --features "$FEATURES"
    bin="$REPO/target/release/gigacompute"
    work="$out/work"
    # --one-file-system: never into a mount left inside an interrupted build's root.
    rm -rf --one-file-system "$work"
    mkdir -p "$work"
    rootfs="$work/rootfs"
    pkgs="linux-image-amd64,systemd-sysv,udev,kmod,initramfs-tools,openssh-server,iproute2"
    pkgs+=",e2fsprogs,dosfstools,grub2-common,cloud-guest-utils,gdisk,ethtool,pciutils,nvme-cli"
    pkgs+=",ca-certificates,curl,procps,less,systemd-timesyncd"
    # The binary's libraries, and DPDK's poll-mode drivers it loads as plugins: virtio-net
    # (qemu, KVM clouds) and the Intel NICs' (ixgbe, i40e, ice).
    pkgs+=",$(lib_packages "$bin" | paste -sd,)"
    pkgs+=",librte-net-virtio23,librte-mempool-ring23,librte-net-ixgbe23,librte-net-i40e23,librte-net-ice23"
    log "Debian $SUITE root (mmdebstrap)"
    mmdebstrap --mode=root --variant=minbase --include="$pkgs" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$SUITE" "$rootfs" "$MIRROR" "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY_MIRROR $SUITE-security main" >"$work/mmdebstrap.log" 2>&1 ||
        { tail -30 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $work/mmdebstrap.log)"; }
    install_appliance "$rootfs" "$bin"
    log "filesystems"
    # Every flashed box makes its own host keys and machine id.
    rm -f "$rootfs"/etc/ssh/ssh_host_*
    : >"$rootfs/etc/machine-id"
    rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
    mke2fs -q -t ext4 -L root_a -d "$rootfs" "$work/root.img" "${ROOT_MB}M"
    mke2fs -q -t ext4 -L gcdata "$work/data.img" "${DATA_MB}M"
    make_esp "$work/esp.img"
    make_config "$work/config.img"
    make_disk "$out/gigacompute.img" "$work"
    # The upgrade payload carries no slot's label until gigacompute-upgrade has written and
    # checked it into a slot.
    e2label "$work/root.img" gcroot
    mv "$work/root.img" "$out/root.img"
    zstd -q -f -T0 "$out/root.img" -o "$out/root.img.zst"
    zstd -q -f -T0 "$out/gigacompute.img" -o "$out/gigacompute.img.zst"
    rm -rf --one-file-system "$work"
    local secs=$(($(date +%s) - t0))
    mib() { du -m "$@" | cut -f1; }
    printf '{"build_s": %s, "disk_mib": %s, "allocated_mib": %s, "zstd_mib": %s, "root_zstd_mib": %s}\n' \
        "$secs" "$(mib --apparent-size "$out/gigacompute.img")" "$(mib "$out/gigacompute.img")" \
        "$(mib "$out/gigacompute.img.zst")" "$(mib "$out/root.img.zst")" >"$out/build-report.json"
    {
        echo "image: $out/gigacompute.img"
        echo "disk: $(du --apparent-size -m "$out/gigacompute.img" | cut -f1) MiB; allocated $(du -m "$out/gigacompute.img" | cut -f1) MiB; zstd $(du -m "$out/gigacompute.img.zst" | cut -f1) MiB"
        echo "root filesystem (upgrade payload root.img): $(du -m "$out/root.img" | cut -f1) MiB allocated, zstd $(du -m "$out/root.img.zst" | cut -f1) MiB"
        echo "build time: ${secs} s (binary, mmdebstrap, filesystems, compression)"
    } | tee "$out/build-report.txt"
}

# The appliance's files in the root filesystem.
install_appliance() {
    local r="$1" bin="$2"
    install -D -m 0755 "$bin" "$r/usr/local/bin/gigacompute"
    # Symbols stay (a panic's backtrace names functions); the debug info (most of the size)
    # does not.
    objcopy --strip-debug "$r/usr/local/bin/gigacompute"
    install -D -m 0755 scripts/hugepages.sh "$r/usr/lib/gigacompute/scripts/hugepages.sh"
    install -D -m 0644 hugepages.conf "$r/usr/lib/gigacompute/hugepages.conf"
    cp -a image/rootfs/. "$r/"
    install -D -m 0644 etc/systemd/gigacompute.service "$r/etc/systemd/system/gigacompute.service"
    # The config the service reads is the one gigacompute-setup chose at boot.
    mkdir -p "$r/etc/gigacompute/operator"
    ln -sf /run/gigacompute/gigacompute.toml "$r/etc/gigacompute/gigacompute.toml"
    mkdir -p "$r/var/lib/gigacompute" "$r/boot/efi"
    chroot "$r" systemctl enable systemd-networkd.service gigacompute-setup.service \
        gigacompute.service gigacompute-slot.service ssh.service >/dev/null 2>&1
    chroot "$r" passwd -l root >/dev/null
    echo gigacompute >"$r/etc/hostname"
}

GRUB_MODULES="part_gpt fat ext2 search search_label normal linux configfile echo serial terminal loadenv test"

make_esp() {
    local img="$1" d
    d="$(dirname "$img")"
    cat >"$d/embed.cfg" <<'EOF'
search --no-floppy --label --set=root GCBOOT
set prefix=($root)/grub
configfile ($root)/grub/grub.cfg
EOF
    grub-mkimage -O i386-pc -o "$d/core.img" -c "$d/embed.cfg" -p /grub biosdisk $GRUB_MODULES
    grub-mkimage -O x86_64-efi -o "$d/BOOTX64.EFI" -c "$d/embed.cfg" -p /grub \
        $GRUB_MODULES efi_gop all_video
    grub-editenv "$d/grubenv" create
    grub-editenv "$d/grubenv" set slot=a
    # FAT32 (some UEFI firmware ignores a FAT16 ESP); 512-byte clusters make 64 MiB enough.
    mkfs.vfat -F 32 -s 1 -n GCBOOT -C "$img" $((ESP_MB * 1024)) >/dev/null
    mmd -i "$img" ::/EFI ::/EFI/BOOT ::/grub
    mcopy -i "$img" "$d/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$img" image/grub.cfg "$d/grubenv" ::/grub/
}

make_config() {
    local img="$1"
    mkfs.vfat -n GCCONFIG -C "$img" $((CONFIG_MB * 1024)) >/dev/null
    mcopy -i "$img" image/config/README.txt image/config/gigacompute.toml.example ::/
}

make_disk() {
    local disk="$1" w="$2" total_mb=2 p args=() i=1
    for p in "${PARTS[@]}"; do total_mb=$((total_mb + ${p##* })); done
    rm -f "$disk"
    truncate -s "${total_mb}M" "$disk"
    for p in "${PARTS[@]}"; do
        read -r name type size <<<"$p"
        args+=(-n "$i:$(part_start "$i"):+${size}M" -t "$i:$type" -c "$i:$name")
        i=$((i + 1))
    done
    sgdisk -o "${args[@]}" "$disk" >/dev/null
    put() { dd if="$1" of="$disk" bs=1M seek=$(($(part_start "$2") / 2048)) conv=notrunc,sparse status=none; }
    put "$w/esp.img" 2
    put "$w/root.img" 3
    put "$w/config.img" 5
    put "$w/data.img" 6
    bios_boot "$disk" "$w/core.img"
}

# What grub-bios-setup does for a GPT disk with a bios_grub partition: boot.img's code in the
# MBR (keeping the partition table) pointing at core.img, and core.img's first sector told
# where the rest of it lies.
bios_boot() {
    python3 - "$1" "$2" /usr/lib/grub/i386-pc/boot.img "$(part_start 1)" <<'EOF'
import struct, sys
disk, core_path, boot_path, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
core = bytearray(open(core_path, 'rb').read())
sectors = (len(core) + 511) // 512
assert sectors <= 2048, "core.img does not fit the 1 MiB bios_grub partition"
core += b'\0' * (sectors * 512 - len(core))
# diskboot.img's block list: the rest of core.img starts at the next sector.
struct.pack_into('<QH', core, 0x1f4, start + 1, sectors - 1)
boot = open(boot_path, 'rb').read()
with open(disk, 'r+b') as f:
    mbr = bytearray(f.read(512))
    mbr[0:440] = boot[0:440]
    struct.pack_into('<Q', mbr, 0x5c, start)  # where core.img's first sector is
    f.seek(0); f.write(mbr)
    f.seek(start * 512); f.write(core)
EOF
}

# Refuses a device that is mounted, holds a mounted partition, is swap, or is held by another
# device (LVM, RAID, dm-crypt); asks for the device's name typed back unless --yes.
flash() {
    local img="${1:?usage: image.sh flash IMAGE DEVICE [--yes]}" dev="${2:?usage: image.sh flash IMAGE DEVICE [--yes]}"
    [ -f "$img" ] || die "$img: no such image"
    [ -b "$dev" ] || die "$dev: not a block device"
    local name real holders part
    real="$(readlink -f "$dev")"
    name="$(basename "$real")"
    [ -e "/sys/class/block/$name/partition" ] && die "$dev is a partition: flash the whole disk"
    for part in "$real" $(ls -d /sys/class/block/"$name"/"$name"* 2>/dev/null | xargs -rn1 basename | sed 's|^|/dev/|'); do
        if awk '{print $1}' /proc/mounts | grep -qx "$part"; then
            die "$part is mounted: refusing to overwrite a disk in use"
        fi
        if awk 'NR > 1 {print $1}' /proc/swaps | grep -qx "$part"; then
            die "$part is in use as swap"
        fi
        holders="$(ls "/sys/class/block/$(basename "$part")/holders" 2>/dev/null || true)"
        [ -z "$holders" ] || die "$part is held by $holders (LVM, RAID or dm-crypt): refusing"
    done
    local need have
    need="$(case "$img" in *.zst) zstd -lv "$img" 2>/dev/null | awk '/Decompressed Size/ {gsub(/[(),]/, "", $0); for (i = 1; i <= NF; i++) if ($i == "B") print $(i - 1)}' | tail -1;; *) stat -c %s "$img";; esac)"
    have="$(blockdev --getsize64 "$real")"
    [ -z "$need" ] || [ "$need" -le "$have" ] || die "$dev holds $have bytes; the image needs $need"
    # Opening exclusively fails while anything else has the device open for exclusive use
    # (mounted, a partition mounted, LVM, RAID, dm-crypt, swap).
    python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))' "$real" 2>/dev/null ||
        die "$dev is busy (opened exclusively by another user)"
    if command -v fuser >/dev/null && fuser -s "$real" 2>/dev/null; then
        die "$dev is open in another process ($(fuser "$real" 2>&1 | cut -d: -f2 | xargs)): refusing"
    fi
    if [ "${3:-}" != --yes ]; then
        read -r -p "overwrite $dev ($(lsblk -dno SIZE,MODEL "$real" 2>/dev/null | xargs))? type its name ($name): " answer
        [ "$answer" = "$name" ] || die "not confirmed"
    fi
    log "writing $img to $dev"
    # Written through a descriptor that holds the exclusive claim from open to fsync: nothing
    # (an automounter, a udev rule) can take the disk between the checks and the write.
    case "$img" in
        *.zst) zstd -dc "$img";;
        *) cat "$img";;
    esac | python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_EXCL)
src, n = sys.stdin.buffer, 0
while True:
    chunk = src.read(4 << 20)
    if not chunk:
        break
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]
    n += len(chunk)
    if n % (256 << 20) == 0:
        print(f"{n >> 20} MiB", file=sys.stderr)
os.fsync(fd)
os.close(fd)
print(f"{n} bytes written", file=sys.stderr)
' "$real"
    log "done: $dev boots the appliance (the data partition grows to the disk at first boot)"
}

run_test() {
    local out="${1:-target/image}"
    need_tools test
    # Built again when the binary or anything that goes into the image is newer than it.
    cargo build --release --locked --bin gigacompute --features "$FEATURES"
    if [ ! -f "$out/gigacompute.img" ] ||
        [ -n "$(find image scripts/image.sh target/release/gigacompute -newer "$out/gigacompute.img" | head -1)" ]; then
        build "$out"
    fi
    local venv=tests/e2e/.venv
    [ -x "$venv/bin/pytest" ] || die "run scripts/test.sh once first (it creates $venv)"
    IMAGE="$(cd "$out" && pwd)/gigacompute.img" CONFIG_OFFSET=$(($(part_start 5) * 512)) \
        "$venv/bin/pytest" -q -s tests/image
}

# Size, build time (from a cold start, binary already compiled) and boot-to-serving under TCG,
# median over RUNS runs of the VM test, into bench/results/image.json; then BENCHMARKS.md.
bench() {
    local runs="${1:-3}" out=target/image started load t0 i
    need_tools test
    started="$(date -u '+%Y-%m-%d %H:%M UTC')"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    t0=$(date +%s)
    cargo build --release --locked --bin gigacompute --features "$FEATURES"
    build "$out"
    for i in $(seq "$runs"); do
        log "VM test, run $i of $runs"
        IMAGE="$PWD/$out/gigacompute.img" CONFIG_OFFSET=$(($(part_start 5) * 512)) \
            tests/e2e/.venv/bin/pytest -q -s tests/image/test_image.py
        cp "$out/test-report.json" "$out/test-report-$i.json"
    done
    python3 scripts/image-bench.py "$out" "$runs" "$started" $(($(date +%s) - t0)) "$load"
    target/release/gigacompute bench report --from bench/results --to BENCHMARKS.md
}

case "${1:-}" in
    build) build "${2:-}";;
    flash) flash "${2:-}" "${3:-}" "${4:-}";;
    test) run_test "${2:-}";;
    bench) bench "${2:-3}";;
    part-start) part_start "${2:?partition number}";;
    *) echo "usage: $0 {build [OUT]|flash IMAGE DEVICE [--yes]|test [OUT]|bench [RUNS]}" >&2; exit 2;;
esac
