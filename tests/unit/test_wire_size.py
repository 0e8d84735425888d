"""The size check counts exactly the bytes the server counts against max_payload."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client

from actors.nats.connection import wire_size
from actors.wire.message import clip_text

header_keys = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}", fullmatch=True)
header_values = st.text(st.characters(blacklist_categories=["Cs"]), max_size=50)


def sent_size(body: bytes, headers: dict[str, str] | None) -> int:
    """The total size nats-py writes into its HPUB/PUB command for this message."""
    nc = Client()
    sent: list[bytes] = []

    async def capture(command: bytes, priority: bool = False) -> None:
        sent.append(command)

    nc._send_command = capture  # type: ignore[method-assign]
    asyncio.run(nc._send_publish("a.b", "", body, len(body), headers))
    return int(sent[0].split(b"\r\n", 1)[0].split()[-1])


@given(st.binary(max_size=100), st.none() | st.dictionaries(header_keys, header_values))
def test_wire_size_matches_nats_py(body: bytes, headers: dict[str, str] | None) -> None:
    assert wire_size(body, headers) == sent_size(body, headers)


def test_clip_text_keeps_one_bounded_line() -> None:
    assert clip_text("short\r\nline", one_line=True) == "short  line"
    clipped = clip_text("x" * 1500, one_line=True)
    assert len(clipped) <= 1000
    assert clipped.endswith(f"...[truncated {1500 - clipped.index('.')} chars]")
