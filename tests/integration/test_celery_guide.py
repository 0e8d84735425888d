"""docs/celery.md runs: its project files are written out, a worker serves them on a real
nats-server, and every other Python block runs against it, in order."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "celery.md"
GUIDE_URL = "nats://127.0.0.1:4222"
FILE_MARK = "# file: "

RUNNER = """
import json, sys, traceback
for line, code in json.load(open(sys.argv[1])):
    try:
        exec(compile(code, f"docs/celery.md:{line}", "exec"), {"__name__": "__guide__"})
    except BaseException:
        traceback.print_exc()
        sys.exit(f"the example at docs/celery.md:{line} failed")
"""


def python_blocks() -> list[tuple[int, str]]:
    """Every ```python block of the guide, with the line it starts on."""
    text = GUIDE.read_text()
    return [
        (text.count("\n", 0, match.start()) + 2, match.group(1))
        for match in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


def test_every_example_of_the_celery_guide_runs(
    nats_server: Any, worker_process: Any, tmp_path: Path
) -> None:
    blocks = [(line, code.replace(GUIDE_URL, nats_server.url)) for line, code in python_blocks()]
    files = [(line, code) for line, code in blocks if code.startswith(FILE_MARK)]
    runs = [(line, code) for line, code in blocks if not code.startswith(FILE_MARK)]
    assert len(files) == 3 and len(runs) >= 4, "the guide lost its examples"
    for _, code in files:
        path = tmp_path / code.splitlines()[0].removeprefix(FILE_MARK).strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    worker_process("proj.tasks:app", PYTHONPATH=str(tmp_path))
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps(runs))
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the refused settings said why
    assert "never uses pickle" in done.stdout and "actors_results" in done.stdout
