"""The command line's error handling (no server needed)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from actors.cli.main import cli
from actors.cli.output import fail, print_table

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


def test_a_table_keeps_each_row_on_one_line_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    reason = "no worker serves task 'x' [bold]not markup[/bold] " + "word " * 40
    print_table(("SEQ", "REASON"), [("7", reason.strip()), ("12", "-")])
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == ["SEQ", "REASON"]
    assert first.split(maxsplit=1) == ["7", reason.strip()]
    assert second.split() == ["12", "-"] and not second.endswith(" ")
    assert first.index("no worker") == header.index("REASON")


def test_fail_prints_the_error_and_exits_with_its_code() -> None:
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        fail("no dead letter 9", 1)

    result = runner.invoke(app, [])
    assert result.exit_code == 1
    assert "error: no dead letter 9" in result.output


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--log-level", "bogus"], "unknown --log-level 'bogus'"),
        (["-l", "bogus"], "unknown --log-level 'bogus'"),
        (["--log-format", "bogus"], "unknown --log-format 'bogus'"),
        (["--concurrency", "-1"], "--concurrency must be at least 1, got -1"),
        (["--concurrency", "0"], "--concurrency must be at least 1, got 0"),
        (["--processes", "0"], "--processes must be at least 1, got 0"),
        (["--health-port", "70000"], "--health-port must be a TCP port"),
        (["-Q", "mail,re ports"], "invalid queue name 're ports'"),
        (["-Q", "mail:0"], "-Q 'mail:0': the concurrency after ':' must be a whole number"),
        (["--queues", ","], "-Q names no queue"),
        (["--loglevel", "bogus"], "unknown --log-level 'bogus'"),  # Celery's spelling
        (["--max-tasks-per-child", "0"], "--max-tasks-per-child must be at least 1, got 0"),
        (["--max-memory-per-child", "-5"], "--max-memory-per-child must be at least 1, got -5"),
        (["--autoscale", "10,3"], "--autoscale is not offered: sync tasks run in threads"),
    ],
)
def test_run_refuses_a_bad_option_in_one_line(args: list[str], error: str) -> None:
    result = runner.invoke(cli, ["run", "tests.apps.basic:app", *args])
    assert result.exit_code == 2
    assert result.output == f"error: {error}" + result.output.split(error, 1)[1]
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("actors ")


def test_every_command_takes_the_connection_options() -> None:
    commands = ["run", "beat", "queues", "purge", "result", "call", "revoke", "migrate"]
    commands += ["exporter", "dead list", "dead purge", "schedule list", "schedule add"]
    commands += ["status", "events", "inspect ping", "inspect active", "control shutdown"]
    for command in commands:
        result = runner.invoke(cli, [*command.split(), "--help"])
        assert "--nats-url" in result.output and "--nats-creds" in result.output, command
