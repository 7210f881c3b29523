#!/usr/bin/env bash
# Debian/Ubuntu packages a bare-metal GigaCompute host uses. Idempotent; needs root.
#   build:      gcc, pkg-config, python3-venv (tests)
#   operations: ethtool, iproute2, tmux (monitor over ssh), hwloc (topology)
#   dataplane:  dpdk, dpdk-dev, libdpdk-dev (DPDK 22.11 and dpdk-devbind)
#   storage:    liburing-dev, fio
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
PKGS=(gcc pkg-config python3-venv ethtool iproute2 tmux hwloc
      dpdk dpdk-dev libdpdk-dev liburing-dev fio)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
echo "install-deps: all present (${PKGS[*]})"
