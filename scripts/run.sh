#!/usr/bin/env bash
# Run the appliance on its embedded default (or with the arguments given to `run`), installing
# what the build needs first: a C toolchain, pkg-config, and hwloc (machine topology) with
# libudev, which Debian's hwloc links. Run from anywhere: scripts/run.sh [--config FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -e /usr/include/hwloc.h ] || need_apt+=(libhwloc-dev)
[ -e /usr/include/libudev.h ] || need_apt+=(libudev-dev)
source scripts/apt-missing.sh
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the Rust toolchain (rustup, 1.95 or newer) first" >&2
    exit 1
fi
exec cargo run --release --locked -- run "$@"
