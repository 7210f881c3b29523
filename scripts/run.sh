#!/usr/bin/env bash
# Run the appliance on its embedded default (or with the arguments given to `run`), installing
# what the build needs first: a C toolchain and make (jemalloc), pkg-config, hwloc (machine
# topology) with libudev, which Debian's hwloc links, and protoc (the etcd client's protos). Run from anywhere: scripts/run.sh [--config FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
source scripts/build-deps.sh
source scripts/install-missing.sh
exec cargo run --release --locked -- run "$@"
