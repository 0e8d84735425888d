"""Credentials settings reach NATS: token and user/password authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import App, BrokerUnavailable
from actors.server import EmbeddedServer
from tests.apps.basic import register


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
        await app.connection()


async def test_nothing_listening_fails_fast(tmp_path: Path) -> None:
    from tests.conftest import free_port

    app = App("auth", nats_url=f"nats://127.0.0.1:{free_port()}", connect_timeout=1)
    with pytest.raises(BrokerUnavailable, match="actors server"):
        await app.connection()
