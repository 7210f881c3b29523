"""The appliance image under qemu (TCG: no KVM here), tested from the host as an operator and
a wallet would: `scripts/image.sh test` runs this with IMAGE (the built disk) and
CONFIG_OFFSET (byte offset of its GCCONFIG partition).

The VM has the image as its boot disk, two emulated NVMe controllers, and two virtio-net PCI
NICs: management (user-mode networking; ssh, JSON-RPC and metrics forwarded to host
loopback) and data plane (user-mode networking; the UDP transaction port forwarded to a host
loopback port). The operator's part is done the operator's way: gigacompute.toml (the
image's example, faucet on) and an ssh key copied onto the FAT config partition.

1. BIOS boot (SeaBIOS). A wallet airdrops and transfers over the forwarded RPC; signed
   transfers sent as datagrams to the forwarded UDP port arrive through DPDK's virtio-net
   poll-mode driver (the NIC is bound to uio_pci_generic by the image's set-up; its RX queue
   counts them, and the ARP that slirp sent first, in `gigacompute nic stats` over ssh);
   accounts land on the NVMe namespaces as NVMe commands (passthrough counters in the
   metrics).
2. Power cut: the VM is killed (SIGKILL, no shutdown) right after the last confirmation.
3. UEFI boot (OVMF) of the same disks: every transaction confirmed before the cut is there,
   with its balance.
4. A/B upgrade: `gigacompute-upgrade` writes the build's root.img to root_b; the VM reboots
   into it, keeps it once the appliance has stayed up, and boots it again after another power
   cut, with every account; the root is mounted read-only.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from solana.rpc.api import Client

# tests/ports.py: ports the kernel does not hand out on its own (shared with tests/image).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ports import free_port  # noqa: E402
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

ROOT = Path(__file__).resolve().parents[2]
IMAGE = Path(os.environ.get("IMAGE", ROOT / "target/image/gigacompute.img"))
CONFIG_OFFSET = int(os.environ.get("CONFIG_OFFSET", "0"))
# Bounds on every wait. TCG runs the guest ~10-30x slower than the host.
BOOT_TIMEOUT = float(os.environ.get("IMAGE_BOOT_TIMEOUT", "900"))
STEP_TIMEOUT = 180
LAMPORTS = 1_000_000_000
UDP_TRANSFERS = 8
# Above the rent-exempt minimum of an empty account (890,880 lamports).
UDP_LAMPORTS = 10_000_000


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the guest is still coming up
            last = e
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


class Vm:
    def __init__(self, work: Path):
        self.work = work
        self.ssh_port = free_port()
        self.rpc_port = free_port()
        self.metrics_port = free_port()
        self.udp_port = free_port()
        self.proc = None
        self.boots = 0

    def start(self, uefi: bool, payload: Path | None = None):
        self.boots += 1
        serial = self.work / f"serial-{self.boots}.log"
        mgmt = ",".join(
            [
                "user,id=mgmt",
                f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
                f"hostfwd=tcp:127.0.0.1:{self.rpc_port}-:8899",
                f"hostfwd=tcp:127.0.0.1:{self.metrics_port}-:7999",
            ]
        )
        data = f"user,id=data,hostfwd=udp:127.0.0.1:{self.udp_port}-10.0.2.15:8003"
        cmd = [
            "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
            "-m", "3072", "-smp", "2", "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial}",
            "-drive", f"file={self.work / 'disk.img'},format=raw,if=virtio",
        ]
        if uefi:
            cmd += ["-bios", "/usr/share/ovmf/OVMF.fd"]
        for i in range(2):
            cmd += [
                "-drive", f"file={self.work / f'nvme{i}.raw'},if=none,id=nv{i},format=raw",
                "-device", f"nvme,serial=gcnvme{i},drive=nv{i},addr={5 + i:#x}",
            ]
        if payload:
            cmd += ["-drive", f"file={payload},format=raw,if=virtio,readonly=on"]
        cmd += [
            "-netdev", mgmt, "-device", "virtio-net-pci,netdev=mgmt,addr=0x3",
            "-netdev", data, "-device", "virtio-net-pci,netdev=data,addr=0x4",
        ]
        self.serial = serial
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.started = time.time()

    def power_cut(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def alive(self):
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")
            raise AssertionError(f"qemu exited ({self.proc.returncode}): {err}\n{self.tail()}")
        return True

    def tail(self, n=60):
        try:
            lines = self.serial.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "serial console:\n" + "\n".join(lines[-n:])

    def ssh(self, command, timeout=120, check=True):
        r = subprocess.run(
            [
                "ssh", "-i", str(self.work / "id"), "-p", str(self.ssh_port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "root@127.0.0.1", command,
            ],
            capture_output=True, text=True, timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"ssh {command!r}: {r.returncode}: {r.stderr}{r.stdout}")
        return r.stdout

    def client(self):
        return Client(f"http://127.0.0.1:{self.rpc_port}", timeout=30)

    def wait_serving(self):
        """Seconds from power-on until getHealth answers ok through the forwarded port."""
        def healthy():
            self.alive()
            return _health(self.rpc_port)

        try:
            wait_for(healthy, BOOT_TIMEOUT, "the appliance to serve JSON-RPC")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.tail()}") from None
        return time.time() - self.started


def _health(port):
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read()).get("result") == "ok"


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    assert IMAGE.exists(), f"no image at {IMAGE}: scripts/image.sh build"
    assert CONFIG_OFFSET > 0, "CONFIG_OFFSET (the GCCONFIG partition's byte offset) not set"
    work = tmp_path_factory.mktemp("image")
    subprocess.run(["cp", "--sparse=always", str(IMAGE), str(work / "disk.img")], check=True)
    for i in range(2):
        with open(work / f"nvme{i}.raw", "wb") as f:
            f.truncate(512 << 20)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    # The operator's files, written onto the FAT partition as any computer could.
    example = (ROOT / "image/config/gigacompute.toml.example").read_text()
    config = example.replace("[faucet]\n# requestAirdrop: for test networks only.\nenabled = false",
                             "[faucet]\nenabled = true")
    assert config != example, "the example's [faucet] section changed: update this test"
    (work / "gigacompute.toml").write_text(config)
    shutil.copy(work / "id.pub", work / "authorized_keys")
    part = f"{work / 'disk.img'}@@{CONFIG_OFFSET}"
    subprocess.run(
        ["mcopy", "-o", "-i", part, str(work / "gigacompute.toml"), str(work / "authorized_keys"), "::/"],
        check=True,
    )
    v = Vm(work)
    yield v
    v.power_cut()
    report = ROOT / "target/image/test-report.json"
    if report.parent.exists() and getattr(v, "report", None):
        report.write_text(json.dumps(v.report, indent=2) + "\n")


def transfer_tx(payer, to, lamports, blockhash):
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), blockhash)


def confirmed(c, sigs):
    st = c.get_signature_statuses(sigs).value
    failed = [(str(sig), s.err) for sig, s in zip(sigs, st) if s is not None and s.err is not None]
    if failed:
        pytest.fail(f"transactions failed: {failed}")
    return all(s is not None and str(s.confirmation_status) in (
        "TransactionConfirmationStatus.Confirmed", "TransactionConfirmationStatus.Finalized") for s in st)


def test_image_serves_through_dpdk_and_nvme_and_survives_a_power_cut(vm):
    report = {"accelerator": "qemu TCG (no KVM)", "guest": "2 vCPUs, 3 GiB"}
    vm.start(uefi=False)
    report["bios_boot_to_serving_s"] = round(vm.wait_serving(), 1)
    print(f"\nBIOS boot to serving (TCG): {report['bios_boot_to_serving_s']} s")
    wait_for(lambda: vm.ssh("true") == "", STEP_TIMEOUT, "ssh with the operator's key")

    # The data NIC is on a DPDK driver, bound by the image's own set-up, and its port is
    # virtio-net's poll-mode driver (not a virtual device).
    assert vm.ssh("basename $(readlink /sys/bus/pci/devices/0000:00:04.0/driver)").strip() == "uio_pci_generic"
    ports = json.loads(vm.ssh("gigacompute nic list --json --config /etc/gigacompute/gigacompute.toml"))["ports"]
    assert ports[0]["driver"] == "net_virtio", ports
    check = vm.ssh("gigacompute configure check storage --config /etc/gigacompute/gigacompute.toml")
    for dev in ("/dev/ng0n1", "/dev/ng1n1"):
        assert f"{dev}: NVMe passthrough" in check, check

    c = vm.client()
    payer = Keypair()
    sig = c.request_airdrop(payer.pubkey(), 5 * LAMPORTS).value
    wait_for(lambda: confirmed(c, [sig]), STEP_TIMEOUT, "the airdrop to confirm")
    sigs = [sig]
    # A transfer over JSON-RPC, as a wallet sends one.
    rpc_dest = Keypair().pubkey()
    bh = c.get_latest_blockhash().value.blockhash
    sigs.append(c.send_transaction(transfer_tx(payer, rpc_dest, LAMPORTS, bh)).value)
    wait_for(lambda: confirmed(c, sigs), STEP_TIMEOUT, "the RPC transfer to confirm")
    # Transfers as datagrams to the data plane's UDP port: through DPDK's virtio PMD.
    udp_dests = [Keypair().pubkey() for _ in range(UDP_TRANSFERS)]
    bh = c.get_latest_blockhash().value.blockhash
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, d in enumerate(udp_dests):
            tx = transfer_tx(payer, d, UDP_LAMPORTS + i, bh)
            sigs.append(tx.signatures[0])
            s.sendto(bytes(tx), ("127.0.0.1", vm.udp_port))
    wait_for(lambda: confirmed(c, sigs), STEP_TIMEOUT, "the UDP transfers to confirm")
    balances = {str(rpc_dest): LAMPORTS}
    balances.update({str(d): UDP_LAMPORTS + i for i, d in enumerate(udp_dests)})
    for k, want in balances.items():
        assert c.get_balance(Pubkey.from_string(k), Confirmed).value == want, k

    stats = json.loads(vm.ssh("gigacompute nic stats --json --config /etc/gigacompute/gigacompute.toml"))
    q = stats["ports"][0]["queues"][0]
    assert q["accepted"] >= UDP_TRANSFERS, q
    assert q["arp_replies"] >= 1, q  # slirp asks for 10.0.2.15 before it forwards
    report["rx_queue_0"] = {k: q[k] for k in ("packets", "accepted", "arp_replies")}

    def nvme_counted():
        text = vm.ssh("curl -s http://127.0.0.1:7999/metrics")
        got = {d: metric(text, "gigacompute_storage_io_nvme_commands_total", device=d)
               for d in ("0", "1")}
        return got if all(v > 0 for v in got.values()) else None

    report["nvme_commands"] = wait_for(nvme_counted, STEP_TIMEOUT, "NVMe passthrough commands on both namespaces")

    # Power cut right after the last confirmation: no shutdown, no final commit.
    vm.power_cut()
    # The upgrade payload rides along as a read-only disk: the build's root.img as it is (its
    # label, gcroot, is no slot's).
    vm.start(uefi=True, payload=IMAGE.parent / "root.img")
    report["uefi_boot_to_serving_s"] = round(vm.wait_serving(), 1)
    print(f"UEFI boot to serving (TCG), recovering the accounts: {report['uefi_boot_to_serving_s']} s")
    c = vm.client()
    statuses = c.get_signature_statuses(sigs).value
    lost = [str(s) for s, st in zip(sigs, statuses) if st is None or st.err is not None]
    assert not lost, f"confirmed before the power cut, missing after: {lost}"
    for k, want in balances.items():
        assert c.get_balance(Pubkey.from_string(k), Confirmed).value == want, k
    # The appliance is still the one on the NVMe namespaces, through passthrough.
    assert nvme_counted()

    # A/B upgrade with the image's own tool: the new root goes to the other slot, boots once,
    # and is kept once the appliance has stayed up on it; the data is untouched.
    assert vm.ssh("/usr/lib/gigacompute/slot current").strip() == "a"
    t = time.time()
    out = vm.ssh("gigacompute-upgrade /dev/disk/by-label/gcroot --no-reboot", timeout=600)
    report["upgrade_write_s"] = round(time.time() - t, 1)
    assert "root_b boots once" in out, out
    assert vm.ssh("/usr/lib/gigacompute/slot saved").split() == ["a", "b"]
    vm.ssh("systemctl reboot", check=False)
    wait_for(lambda: vm.ssh("/usr/lib/gigacompute/slot current", timeout=30).strip() == "b",
             BOOT_TIMEOUT, "the upgraded slot (root_b) to boot")
    wait_for(lambda: _health(vm.rpc_port), BOOT_TIMEOUT, "the appliance on root_b")
    wait_for(lambda: vm.ssh("/usr/lib/gigacompute/slot saved").strip() == "b", STEP_TIMEOUT,
             "root_b to be kept once the appliance stayed up")
    # Kept across a power cut, with every account.
    vm.power_cut()
    vm.start(uefi=False)
    wait_for(lambda: vm.ssh("/usr/lib/gigacompute/slot current", timeout=30).strip() == "b",
             BOOT_TIMEOUT, "root_b to boot after a power cut")
    vm.wait_serving()
    c = vm.client()
    for k, want in balances.items():
        assert c.get_balance(Pubkey.from_string(k), Confirmed).value == want, k
    assert vm.ssh("findmnt -no OPTIONS /").startswith("ro"), "the root filesystem is read-only"
    vm.report = report
    print(json.dumps(report, indent=2))
