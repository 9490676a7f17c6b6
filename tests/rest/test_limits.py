"""MAX_MESSAGE_CHARS, MAX_METADATA_BYTES and MAX_BODY_BYTES, on an app configured with small
limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from gateway.settings import Settings, load_settings
from tests.factories import Account, create_session, send
from tests.rest.expect import ok, refused, url

MAX_CHARS = 10
MAX_BYTES = 1024
MAX_METADATA = 100


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        max_message_chars=MAX_CHARS,
        max_body_bytes=MAX_BYTES,
        max_metadata_bytes=MAX_METADATA,
        _env_file=None,
    )


async def _total(client: httpx.AsyncClient, account: Account, session_id: str) -> int:
    path = url(f"/sessions/{session_id}/messages")
    total: int = ok(await client.get(path, headers=account.headers))["total"]
    return total


@pytest.mark.parametrize("unit", ["a", "é", "界", "😀"])
async def test_message_limit_counts_characters(
    client: httpx.AsyncClient, alice: Account, unit: str
) -> None:
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, unit * MAX_CHARS))
    message = refused(
        await send(client, alice, session_id, unit * (MAX_CHARS + 1)), 400, field="message"
    )
    assert str(MAX_CHARS) in message
    assert await _total(client, alice, session_id) == 2


async def test_metadata_limit_counts_compact_json_bytes(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    # {"note":"..."} is 11 bytes besides the text; spaces in the request do not count.
    fits = {"note": "é" * ((MAX_METADATA - 11) // 2) + "x" * ((MAX_METADATA - 11) % 2)}
    assert len(orjson.dumps(fits)) == MAX_METADATA
    ok(await send(client, alice, session_id, "hi", metadata=fits))
    over = {"note": fits["note"] + "x"}
    message = refused(
        await send(client, alice, session_id, "hi", metadata=over), 400, field="metadata"
    )
    assert f"at most {MAX_METADATA} bytes" in message
    assert await _total(client, alice, session_id) == 2


def _body(account: Account, size: int) -> bytes:
    """A valid session-creating body padded with spaces to exactly `size` bytes."""
    raw = orjson.dumps({"user_id": account.user_id})
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


async def _chunks(body: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_body_limit(client: httpx.AsyncClient, alice: Account, streamed: bool) -> None:
    for size, allowed in ((MAX_BYTES, True), (MAX_BYTES + 1, False), (50 * MAX_BYTES, False)):
        body = _body(alice, size)
        content = _chunks(body) if streamed else body
        response = await client.post(url("/sessions"), content=content, headers=alice.headers)
        assert ("content-length" in response.request.headers) is not streamed
        if allowed:
            ok(response)
        else:
            assert str(MAX_BYTES) in refused(response, 400, field="body")


async def test_body_limit_on_a_message(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    response = await send(client, alice, session_id, "hi", metadata="m" * MAX_BYTES)
    refused(response, 400, field="body")
    assert await _total(client, alice, session_id) == 0


async def test_content_length_must_be_a_number(client: httpx.AsyncClient, alice: Account) -> None:
    headers = {**alice.headers, "Content-Length": "lots"}
    response = await client.post(url("/sessions"), content=b"{}", headers=headers)
    assert "Content-Length" in refused(response, 400, field="body")
