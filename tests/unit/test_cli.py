"""The command line's error handling (no server needed)."""

from __future__ import annotations

from typer.testing import CliRunner

from actors.cli.main import cli

runner = CliRunner()


def test_run_with_a_module_that_does_not_exist() -> None:
    result = runner.invoke(cli, ["run", "no_such_module_xyz:app"])
    assert result.exit_code == 2
    assert "cannot import 'no_such_module_xyz'" in result.output


def test_run_with_something_that_is_not_an_app() -> None:
    result = runner.invoke(cli, ["run", "tests.apps.basic:tasks"])
    assert result.exit_code == 2
    assert "is not an actors App" in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "server" in result.output
