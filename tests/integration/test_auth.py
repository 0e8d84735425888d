"""Credentials settings reach NATS: token and user/password authentication."""

from __future__ import annotations

import shutil
import subprocess
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actors import App, BrokerUnavailable
from actors.nats.server import EmbeddedServer
from tests.apps.basic import register
from tests.conftest import free_port


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "nats", extra_args=("--auth", "s3cret-token"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def user_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "nats", extra_args=("--user", "alice", "--pass", "pw1"))
    server.start()
    yield server
    server.stop()


async def test_token_authentication(token_server: EmbeddedServer, worker) -> None:
    app = App("auth", nats_url=token_server.url, nats_token="s3cret-token")
    tasks = register(app)
    await worker(app)
    assert await (await tasks["add"].adelay(1, 2)).aget(timeout=10) == 3
    await app.aclose()


async def test_user_password_authentication(user_server: EmbeddedServer, worker) -> None:
    app = App("auth", nats_url=user_server.url, nats_user="alice", nats_password="pw1")
    tasks = register(app)
    await worker(app)
    assert await (await tasks["add"].adelay(2, 2)).aget(timeout=10) == 4
    await app.aclose()


async def test_wrong_credentials_fail_fast_with_a_clear_error(user_server: EmbeddedServer) -> None:
    app = App("auth", nats_url=user_server.url, nats_user="alice", nats_password="wrong")
    with pytest.raises(BrokerUnavailable, match="cannot connect to NATS"):
        await app.client.connection()


async def test_nothing_listening_fails_fast(tmp_path: Path) -> None:
    from tests.conftest import free_port

    app = App("auth", nats_url=f"nats://127.0.0.1:{free_port()}", connect_timeout=1)
    with pytest.raises(BrokerUnavailable, match="actors server"):
        await app.client.connection()


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    commands = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
         "-days", "1", "-subj", "/CN=actors-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca_cert, cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_with_a_private_ca(tmp_path: Path, worker) -> None:
    ca, cert, key = make_certificates(tmp_path)
    tls = ("--tls", "--tlscert", str(cert), "--tlskey", str(key))
    with EmbeddedServer(tmp_path / "nats", extra_args=tls) as server:
        url = f"tls://127.0.0.1:{server.port}"
        app = App("tls", nats_url=url, nats_tls_ca=str(ca))
        tasks = register(app)
        await worker(app)
        assert await (await tasks["add"].adelay(5, 5)).aget(timeout=10) == 10
        await app.aclose()
        untrusting = App("tls", nats_url=url, connect_timeout=1)
        with pytest.raises(BrokerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.client.connection()


def _assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked in: {text[:300]}"


def _exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


async def test_credentials_in_the_url_are_never_logged(
    user_server: EmbeddedServer, token_server: EmbeddedServer, worker
) -> None:
    users = f"nats://alice:pw1@127.0.0.1:{user_server.port}"
    tokens = f"nats://s3cret-token@127.0.0.1:{token_server.port}"
    for url, secret in ((users, "pw1"), (tokens, "s3cret-token")):
        app = App("auth", nats_url=url)
        tasks = register(app)
        with capture_logs() as logs:
            await worker(app)
            assert await (await tasks["add"].adelay(1, 2)).aget(timeout=10) == 3
        started = [e for e in logs if e["event"] == "worker.started"]
        assert started and "***@127.0.0.1" in started[0]["nats"]
        _assert_hidden(repr(logs) + repr(app.conf), secret)
        await app.aclose()


async def test_connect_errors_never_show_the_password(user_server: EmbeddedServer) -> None:
    port = user_server.port
    attempts = [
        (App("auth", nats_url=f"nats://alice:wr0ng-pass@127.0.0.1:{port}"), "wr0ng-pass"),
        (App("auth", nats_url=f"nats://t0ken-value@127.0.0.1:{port}"), "t0ken-value"),
        (App("auth", nats_url=user_server.url, nats_user="alice", nats_password="wr0ng"), "wr0ng"),
        (App("auth", nats_url=f"nats://bob:p4ss@127.0.0.1:{free_port()}", connect_timeout=1),
         "p4ss"),
    ]  # fmt: skip
    for app, secret in attempts:
        with capture_logs() as logs, pytest.raises(BrokerUnavailable) as caught:
            await app.client.connection()
        _assert_hidden(_exception_text(caught.value) + repr(logs), secret)
