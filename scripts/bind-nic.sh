#!/usr/bin/env bash
# Bind a NIC to a DPDK-compatible driver (vfio-pci by default) or back to its kernel driver.
#
#   scripts/bind-nic.sh status
#   scripts/bind-nic.sh bind   PCI_ADDR [DRIVER]     e.g. 0000:03:00.0 vfio-pci
#   scripts/bind-nic.sh unbind PCI_ADDR KERNEL_DRIVER e.g. 0000:03:00.0 ixgbe
#
# Refuses to take the NIC that carries the default route (you would lose the host).
set -euo pipefail
DEVBIND="$(command -v dpdk-devbind.py || command -v dpdk-devbind || true)"
[ -n "$DEVBIND" ] || { echo "dpdk-devbind not found: run scripts/install-deps.sh" >&2; exit 1; }

route_pci() {
    local dev
    dev="$(ip -o route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | head -1)"
    [ -n "$dev" ] && basename "$(readlink -f "/sys/class/net/$dev/device" 2>/dev/null)" 2>/dev/null || true
}

case "${1:-}" in
    status) exec "$DEVBIND" --status-dev net;;
    bind)
        pci="${2:?PCI address}"; drv="${3:-vfio-pci}"
        [ "$pci" != "$(route_pci)" ] || { echo "refusing: $pci carries the default route" >&2; exit 1; }
        [ "$drv" != vfio-pci ] || modprobe vfio-pci
        exec "$DEVBIND" --bind="$drv" "$pci";;
    unbind)
        exec "$DEVBIND" --bind="${3:?kernel driver}" "${2:?PCI address}";;
    *) echo "usage: $0 {status|bind PCI [DRIVER]|unbind PCI KERNEL_DRIVER}" >&2; exit 2;;
esac
