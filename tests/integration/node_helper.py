"""Running the Node.js programs of tests/node (written from docs/protocol.md alone)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
DEPENDENCIES = ("nats", "@msgpack/msgpack")


def node_command(script: str) -> list[str]:
    """The command that runs ``tests/node/<script>``; installs the npm dependencies if missing.

    Skips the test when ``node`` or ``npm`` is not on PATH.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the Node.js protocol programs need `node` and `npm` on PATH")
    modules = NODE_DIR / "node_modules"
    if not all((modules / name / "package.json").is_file() for name in DEPENDENCIES):
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm install in {NODE_DIR} did not finish in 300 s")
        if done.returncode != 0:
            pytest.fail(
                f"npm install in {NODE_DIR} failed with exit code {done.returncode}:\n"
                f"{done.stdout}\n{done.stderr}"
            )
    return [node, str(NODE_DIR / script)]
