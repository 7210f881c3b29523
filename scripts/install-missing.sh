# Sourced by scripts/run.sh and scripts/test.sh: install the Debian packages named in the
# `need_apt` array, if any, with sudo when not root; then insist on a Rust toolchain.
if ((${#need_apt[@]})); then
    echo "installing Debian packages: ${need_apt[*]}"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the Rust toolchain (rustup, 1.95 or newer) first" >&2
    exit 1
fi
