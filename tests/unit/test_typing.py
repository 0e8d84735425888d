"""The public API is typed: mypy checks a user's calls of a task against its function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[2]

USER_CODE = textwrap.dedent(
    """
    from actors import App, AsyncResult

    app = App("typing")


    @app.actor
    def add(x: int, y: int) -> int:
        return x + y


    @app.actor(name="typing.mul")
    async def mul(x: int, y: int) -> int:
        return x * y


    @app.actor(name="typing.echo", bind=True)
    def echo(self: object, text: str) -> str:
        return text


    total: int = add.delay(2, 2).get()
    product: int = mul.delay(2, 3).get()
    echoed: str = echo.delay("hi").get()
    later: AsyncResult[int] = add.apply_async((2, 2), countdown=5)
    partial = add.s(2)  # a partial signature: a chain prepends the parent's result


    async def main() -> int:
        result = await add.adelay(1, 2)
        return await result.aget()


    add.delay("x", 2)  # error: str for int
    add.apply_async((2, 2), countdwn=5)  # error: no such option
    """
)


def test_mypy_flags_wrong_calls_and_passes_right_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file = tmp_path / "user.py"
    user_file.write_text(USER_CODE)
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    config = str(ROOT / "pyproject.toml")  # strict, and what to skip of untyped dependencies
    cache = str(tmp_path / "mypy_cache")
    out, err, status = mypy_api.run(["--config-file", config, "--cache-dir", cache, str(user_file)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = USER_CODE.splitlines()
    flagged = {lines[int(line.split(":")[1]) - 1].split("#")[0].strip() for line in errors}
    assert flagged == {'add.delay("x", 2)', "add.apply_async((2, 2), countdwn=5)"}, out + err
    assert status == 1
