#!/usr/bin/env bash
# Apply, check or remove the hugepage reservation described in hugepages.conf.
#
#   scripts/hugepages.sh init    reserve pages per node and mount hugetlbfs (idempotent)
#   scripts/hugepages.sh check   exit 0 if the host matches the file, else 1 with the reasons
#   scripts/hugepages.sh fini    unmount and restore the page counts saved by init
#
# Environment: HUGEPAGES_CONF (default: hugepages.conf next to this script's parent),
# HUGEPAGES_STATE (default /run/gigacompute-hugepages.state), SYSFS (default /sys).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CONF="${HUGEPAGES_CONF:-$HERE/../hugepages.conf}"
STATE="${HUGEPAGES_STATE:-/run/gigacompute-hugepages.state}"
SYSFS="${SYSFS:-/sys}"

PAGES_2M_PER_NODE=0 PAGES_1G_PER_NODE=0 NODES=all
MOUNT_2M=/dev/hugepages MOUNT_1G=/dev/hugepages-1G OWNER=root GROUP=root MODE=1770

die() { echo "hugepages: $*" >&2; exit 2; }

parse_conf() {
    [ -r "$CONF" ] || die "cannot read $CONF"
    local line key value n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line="${line%%#*}"
        line="$(echo "$line" | tr -d '[:space:]')"
        [ -z "$line" ] && continue
        [[ "$line" == *=* ]] || die "$CONF:$n: expected KEY=VALUE"
        key="${line%%=*}" value="${line#*=}"
        case "$key" in
            PAGES_2M_PER_NODE|PAGES_1G_PER_NODE)
                [[ "$value" =~ ^[0-9]+$ ]] || die "$CONF:$n: $key must be a number";;
            NODES) [[ "$value" == all || "$value" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "$CONF:$n: NODES must be all or a list";;
            MOUNT_2M|MOUNT_1G) [[ "$value" == /* ]] || die "$CONF:$n: $key must be an absolute path";;
            OWNER|GROUP) [[ "$value" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "$CONF:$n: bad $key";;
            MODE) [[ "$value" =~ ^[0-7]{3,4}$ ]] || die "$CONF:$n: MODE must be octal";;
            *) die "$CONF:$n: unknown key $key";;
        esac
        printf -v "$key" '%s' "$value"
    done < "$CONF"
}

nodes() {
    if [ "$NODES" = all ]; then
        local d found=0
        for d in "$SYSFS"/devices/system/node/node[0-9]*; do
            [ -d "$d" ] && { basename "$d" | sed 's/node//'; found=1; }
        done
        [ "$found" = 1 ] || echo 0
    else
        echo "$NODES" | tr ',' '\n'
    fi
}

# sysfs file holding the page count of size $1 (kB) on node $2
nr_file() {
    local f="$SYSFS/devices/system/node/node$2/hugepages/hugepages-$1kB/nr_hugepages"
    [ -e "$f" ] || f="$SYSFS/kernel/mm/hugepages/hugepages-$1kB/nr_hugepages"
    echo "$f"
}

sizes() {  # size_kB wanted mount
    echo "2048 $PAGES_2M_PER_NODE $MOUNT_2M"
    echo "1048576 $PAGES_1G_PER_NODE $MOUNT_1G"
}

mounted_pagesize() {  # prints the pagesize option of a hugetlbfs mount at $1, or nothing
    awk -v m="$1" '$2 == m && $3 == "hugetlbfs" { print $4 }' /proc/mounts | tr ',' '\n' | sed -n 's/^pagesize=//p' | head -1
}

is_hugetlbfs() { awk -v m="$1" '$2 == m && $3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; }

want_pagesize() { [ "$1" = 2048 ] && echo 2M || echo 1024M; }

cmd_check() {
    local fails=() size want mnt node f have ps
    while read -r size want mnt; do
        [ "$want" -gt 0 ] || continue
        for node in $(nodes); do
            f="$(nr_file "$size" "$node")"
            if [ ! -r "$f" ]; then
                fails+=("node $node: ${size}kB pages not supported by this kernel/CPU ($f missing)")
                continue
            fi
            have="$(cat "$f")"
            [ "$have" -ge "$want" ] || fails+=("node $node: $have of $want ${size}kB pages reserved (run: scripts/hugepages.sh init)")
        done
        if ! is_hugetlbfs "$mnt"; then
            fails+=("$mnt is not a hugetlbfs mount (run: scripts/hugepages.sh init)")
        else
            ps="$(mounted_pagesize "$mnt")"
            [ -z "$ps" ] || [ "$ps" = "$(want_pagesize "$size")" ] || fails+=("$mnt has pagesize=$ps, want $(want_pagesize "$size")")
            have="$(stat -c '%U:%G %a' "$mnt")"
            [ "$have" = "$OWNER:$GROUP $((8#$MODE))" ] || [ "$have" = "$OWNER:$GROUP $(printf '%o' $((8#$MODE)))" ] \
                || fails+=("$mnt is $have, want $OWNER:$GROUP $MODE")
        fi
    done < <(sizes)
    if [ "${#fails[@]}" -eq 0 ]; then
        echo "hugepages: OK ($CONF)"
        return 0
    fi
    printf 'hugepages: FAIL: %s\n' "${fails[@]}"
    return 1
}

cmd_init() {
    [ "$(id -u)" -eq 0 ] || die "init needs root"
    local size want mnt node f
    if [ ! -e "$STATE" ]; then
        mkdir -p "$(dirname "$STATE")"
        : > "$STATE.tmp"
        while read -r size want mnt; do
            for node in $(nodes); do
                f="$(nr_file "$size" "$node")"
                [ -r "$f" ] && echo "$f $(cat "$f")" >> "$STATE.tmp"
            done
            is_hugetlbfs "$mnt" && echo "mounted $mnt" >> "$STATE.tmp"
        done < <(sizes)
        mv "$STATE.tmp" "$STATE"
    fi
    while read -r size want mnt; do
        [ "$want" -gt 0 ] || continue
        for node in $(nodes); do
            f="$(nr_file "$size" "$node")"
            [ -w "$f" ] || die "node $node: ${size}kB pages not supported ($f)"
            [ "$(cat "$f")" -ge "$want" ] || echo "$want" > "$f"
            [ "$(cat "$f")" -ge "$want" ] || echo "hugepages: node $node got $(cat "$f") of $want ${size}kB pages (memory fragmented?)" >&2
        done
        mkdir -p "$mnt"
        is_hugetlbfs "$mnt" || mount -t hugetlbfs -o "pagesize=$(want_pagesize "$size")" nodev "$mnt"
        chown "$OWNER:$GROUP" "$mnt"
        chmod "$MODE" "$mnt"
    done < <(sizes)
    cmd_check
}

cmd_fini() {
    [ "$(id -u)" -eq 0 ] || die "fini needs root"
    local size want mnt f n line
    while read -r size want mnt; do
        [ "$want" -gt 0 ] || continue
        if is_hugetlbfs "$mnt" && ! grep -qx "mounted $mnt" "$STATE" 2>/dev/null; then
            umount "$mnt"
        fi
    done < <(sizes)
    if [ -r "$STATE" ]; then
        while read -r f n; do
            [ "$f" = mounted ] && continue
            [ -w "$f" ] && echo "$n" > "$f"
        done < "$STATE"
        rm -f "$STATE"
    fi
    echo "hugepages: released"
}

parse_conf
case "${1:-}" in
    init) cmd_init;;
    check) cmd_check;;
    fini) cmd_fini;;
    *) echo "usage: $0 {init|check|fini}" >&2; exit 2;;
esac
