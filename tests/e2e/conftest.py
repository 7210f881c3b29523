"""Process-level fixtures: start the real `gigacompute` binary on free ports and talk to it
as a Solana client would (solana-py / solders)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from solana.rpc.api import Client

# tests/ports.py: ports the kernel does not hand out on its own (shared with tests/image).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ports import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("GIGACOMPUTE_BIN", ROOT / "target" / "release" / "gigacompute"))


class Node:
    """One appliance process over one data directory; can be stopped and restarted."""

    def __init__(
        self, workdir: Path, extra_config: str = "", rpc_config: str = "", pubsub_config: str = ""
    ):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.rpc_port = free_port()
        self.tpu_port = free_port()
        self.metrics_port = free_port()
        self.pubsub_port = free_port()
        self.config = workdir / "gigacompute.toml"
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\n'
            f'[net]\nbind = "127.0.0.1:{self.tpu_port}"\n'
            f'[rpc]\nbind = "127.0.0.1:{self.rpc_port}"\n{rpc_config}'
            f'[metrics]\nbind = "127.0.0.1:{self.metrics_port}"\n'
            f'[pubsub]\nbind = "127.0.0.1:{self.pubsub_port}"\n{pubsub_config}'
            # The device-array engine on a small device file (tmpfs-backed /tmp keeps it in RAM).
            f"[storage]\ndevice_bytes = {256 << 20}\n"
            + extra_config
        )
        self.proc = None
        self.log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.pubsub_port}"

    @property
    def tpu(self):
        return ("127.0.0.1", self.tpu_port)

    def start(self):
        self.log = open(self.workdir / "node.log", "ab")
        self.proc = subprocess.Popen(
            [str(BINARY), "run", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        client = Client(self.url)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, f"node exited: {self.tail()}"
            try:
                client.get_slot()
                return
            except Exception:
                time.sleep(0.1)
        raise AssertionError(f"node did not come up: {self.tail()}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            self.log.close()
        self.proc = None
        return code

    def tail(self) -> str:
        p = self.workdir / "node.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    assert BINARY.exists(), f"build the binary first: {BINARY}"
    n = Node(tmp_path_factory.mktemp("node"))
    n.start()
    yield n
    n.stop()
