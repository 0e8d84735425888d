"""Running the ``actors`` CLI in a subprocess: it configures logging, which must not leak."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def actors_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m actors ARGS`` and return its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "actors", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
