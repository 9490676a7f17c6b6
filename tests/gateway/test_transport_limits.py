"""Limits `chat-gateway serve` sets below the app: the size of a request's head
(MAX_HEADER_BYTES, answered 431 in the envelope) and of one WebSocket message
(WS_MAX_MESSAGE_BYTES, the connection closed with 1009)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.gateway.test_serve import serve
from tests.servers import Server, StartServer, scratch_database

MAX_HEADER_BYTES = 4096
WS_MAX_MESSAGE_BYTES = 2048


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    with scratch_database(tmp_path) as url:
        yield url


@pytest.fixture
def server(fresh_database: str, servers: StartServer) -> Server:
    return serve(
        servers,
        fresh_database,
        BOOTSTRAP_ADMIN="false",
        MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        WS_MAX_MESSAGE_BYTES=str(WS_MAX_MESSAGE_BYTES),
    )


def exchange(server: Server, request: bytes) -> bytes:
    """Send `request` whole on a new connection and read until the server closes it or
    answers once."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        with suppress(BrokenPipeError, ConnectionResetError):  # the answer may be waiting
            connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith((b"}", b"\n")):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def head(extra_header_bytes: int) -> bytes:
    return (
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: "
        + b"a" * extra_header_bytes
        + b"\r\n\r\n"
    )


def test_a_head_at_the_limit_is_served_and_one_past_it_is_refused_readably(
    server: Server,
) -> None:
    # The request line, Host and the padding header's name make 46 bytes besides it.
    fits = exchange(server, head(MAX_HEADER_BYTES - 46 - 200))
    assert fits.startswith(b"HTTP/1.1 200 "), fits[:100]

    for padding in (MAX_HEADER_BYTES, 20 * MAX_HEADER_BYTES, 2_000_000):
        refused = exchange(server, head(padding))
        status, _, rest = refused.partition(b"\r\n")
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large", refused[:100]
        body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body == {
            "code": 431,
            "message": f"request line and headers exceed {MAX_HEADER_BYTES} bytes",
            "data": None,
        }

    many_small = b"".join(b"X-H%d: %s\r\n" % (n, b"b" * 100) for n in range(60))
    refused = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" + many_small + b"\r\n")
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:100]
    # The server goes on serving.
    assert exchange(server, head(10)).startswith(b"HTTP/1.1 200 ")


async def test_a_websocket_message_past_the_limit_closes_the_connection_with_1009(
    server: Server,
) -> None:
    url = server.base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        small = json.dumps({"type": "ping", "payload": {"pad": "x" * 100}})
        await ws.send(small)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
        await ws.send(json.dumps({"type": "ping", "payload": {"pad": "x" * WS_MAX_MESSAGE_BYTES}}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
