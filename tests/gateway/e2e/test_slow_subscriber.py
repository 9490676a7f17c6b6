"""A WebSocket subscriber that stops reading, against a real server process on loopback.

The stalled client speaks graphql-transport-ws by hand over a socket with a tiny receive
buffer, and stops reading; REST floods the session with large messages while a
well-behaved subscriber reads everything. The server must cut the stalled one off with
1008 "subscriber too slow" (which it reads after what it had not read yet), keep its own
memory bounded meanwhile (VmRSS from /proc), deliver every message to the other
subscriber, and print no traceback (the `servers` fixture checks its output).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from db.events import InProcessBroker, session_topic
from db.ports import Runtime
from gateway.graphql import PATH, GraphQLEndpoint
from gateway.providers import ProviderRegistry
from schema import GraphQLLimits
from tests.factories import Account, create_session, read_all_messages, send
from tests.schema.ws import PROTOCOLS, ProtocolClient, TransportWS
from tests.servers import (
    Server,
    StartServer,
    child_env,
    free_port,
    live_server,
    uvicorn_command,
)

CUT_OFF_LINE = 'with 1008 "subscriber too slow"'
# Each turn stores two messages of about this many characters (the question, its echo).
# The kernel's socket buffers absorb a few MB for the stalled client; what is published
# after that until the cut-off (the default send timeout, 10 s, is used) is what a server
# without a bound would hold for it.
CONTENT_CHARS = 200_000
MAX_TURNS = 500
# Memory samples (one a turn) that make a window: large strings come and go, so single
# samples spike, while what the server holds on to shows in the lowest of a window.
WINDOW = 10
# How much the server may settle higher from the stall's start (the first window once
# the socket buffers are full) to its end, and from before the flood to the stall's end.
GROWTH_BOUND_KIB = 4 * 1024
MEMORY_BOUND_KIB = 16 * 1024
WAIT = 60.0  # seconds for the server to cut a subscriber off (the default bound is 10 s)
MESSAGE_ADDED = """
subscription($sessionId: ID!) { messageAdded(sessionId: $sessionId) { id type content } }
"""


def memory_kib(server: Server) -> int:
    """The server process's resident memory (VmRSS), in KiB."""
    status = Path(f"/proc/{server.process.pid}/status").read_text(encoding="ascii")
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


class StalledSubscriber:
    """graphql-transport-ws spoken by hand over a socket with a tiny receive buffer.

    Nothing reads the socket unless a method is called, so between calls the kernel's
    buffers fill and the server's sends stall, as with a client that stopped reading.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.frames: list[Frame] = []
        self.ended = False

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, headers: dict[str, str]) -> AsyncIterator[StalledSubscriber]:
        uri = parse_uri(url)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting, so the window the kernel offers the server stays small.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, (uri.host, uri.port))
        # A small stream buffer too: asyncio stops reading the socket once it holds 16 KiB.
        reader, writer = await asyncio.open_connection(sock=raw, limit=8192)
        protocol = ClientProtocol(
            uri, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None
        )
        request = protocol.connect()
        request.headers.update(headers)
        protocol.send_request(request)
        client = cls(reader, writer, protocol)
        try:
            await client.flush()
            response = (await client.read_until(lambda events: bool(events)))[0]
            assert isinstance(response, Response) and response.status_code == 101, response
            yield client
        finally:
            writer.close()

    async def flush(self) -> None:
        """Write what the protocol has to send (our messages, pongs, a close reply)."""
        self.writer.write(b"".join(self.protocol.data_to_send()))
        await self.writer.drain()

    async def read_until(
        self, done: Callable[[list[Any]], bool], seconds: float = 10.0
    ) -> list[Any]:
        """Read until `done(events read by this call)` or the end of the connection."""
        events: list[Any] = []
        async with asyncio.timeout(seconds):
            while not done(events) and not self.ended:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    self.protocol.receive_data(data)
                else:
                    self.protocol.receive_eof()
                    self.ended = True
                new = self.protocol.events_received()
                events += new
                self.frames += [event for event in new if isinstance(event, Frame)]
                if not self.ended:
                    await self.flush()
        return events

    async def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        await self.flush()

    async def receive(self) -> dict[str, Any]:
        """The next text message (for the handshake, while the client still reads)."""

        def text(events: list[Any]) -> list[Frame]:
            return [e for e in events if isinstance(e, Frame) and e.opcode is Opcode.TEXT]

        [frame] = text(await self.read_until(lambda events: bool(text(events))))
        message: dict[str, Any] = json.loads(frame.data)
        return message

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(frame.data) for frame in self.frames if frame.opcode is Opcode.TEXT]

    def close(self) -> Close | None:
        """The server's close frame, if one arrived."""
        frames = [frame for frame in self.frames if frame.opcode is Opcode.CLOSE]
        return Close.parse(frames[0].data) if frames else None

    def result_ids(self) -> list[str]:
        """The ids of the messageAdded results read so far."""
        return [
            message["payload"]["data"]["messageAdded"]["id"]
            for message in self.messages()
            if message["type"] == "next"
        ]


async def until(condition: Callable[[], bool], seconds: float = WAIT) -> None:
    """Poll `condition` until it holds, for at most `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def gateway_env(database_url: str) -> dict[str, str]:
    return child_env(
        DATABASE_URL=database_url,
        BOOTSTRAP_ADMIN="false",
        MAX_MESSAGE_CHARS=str(CONTENT_CHARS + 100),
        # Many sends and streams from one key: rate limits off (test_rate_limits.py).
        RATE_LIMIT_PER_MINUTE="0",
        REPLY_RATE_LIMIT_PER_MINUTE="0",
        MAX_STREAMS_PER_USER="0",
    )


@pytest.fixture
async def gateway(servers: StartServer, database_url: str, app: Starlette) -> Server:
    """One server process on the run's (emptied) database."""
    server = servers(env=gateway_env(database_url))
    await server.wait_ready_async()
    return server


@dataclass
class Scene:
    http: httpx.AsyncClient
    session_id: str
    slow: StalledSubscriber
    received: list[str]  # the ids the well-behaved subscriber got, in order

    async def turn(self, account: Account, content: str) -> None:
        response = await send(self.http, account, self.session_id, content)
        assert response.status_code == 200, response.text

    async def ids(self, account: Account) -> list[str]:
        messages = await read_all_messages(self.http, account, self.session_id)
        return [message["message_id"] for message in messages]

    async def both_got(self, message_id: str) -> bool:
        """Whether both subscribers get `message_id` within a second (the stalled one
        still reads here)."""
        try:
            await until(lambda: message_id in self.received, seconds=1)
            await self.slow.read_until(lambda _: message_id in self.slow.result_ids(), seconds=1)
        except TimeoutError:
            return False
        return True


async def collect(subscriber: TransportWS, operation: str, into: list[str]) -> None:
    """Append the id of every messageAdded result to `into`, until cancelled."""
    while True:
        result = await subscriber.next_result(operation)
        assert "errors" not in result, result
        into.append(result["data"]["messageAdded"]["id"])


@asynccontextmanager
async def scene(server: Server, account: Account) -> AsyncIterator[Scene]:
    """A session with two messageAdded subscribers, both live: the stalled one (still
    reading here) and a well-behaved one, which reads in the background throughout."""
    url = f"ws://127.0.0.1:{server.port}/graphql"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        session_id = await create_session(http, account)
        async with (
            StalledSubscriber.connect(url, account.headers) as slow,
            TransportWS.connect(url, headers=account.headers) as good,
        ):
            await slow.send({"type": "connection_init"})
            assert (await slow.receive())["type"] == "connection_ack"
            payload = {"query": MESSAGE_ADDED, "variables": {"sessionId": session_id}}
            await slow.send({"id": "1", "type": "subscribe", "payload": payload})
            operation = await good.subscribe(MESSAGE_ADDED, {"sessionId": session_id})
            current = Scene(http, session_id, slow, [])
            collector = asyncio.create_task(collect(good, operation, current.received))
            try:
                # A subscription is live once a turn's last message reaches it.
                for _ in range(20):
                    await current.turn(account, "warm-up")
                    if await current.both_got((await current.ids(account))[-1]):
                        break
                else:
                    raise AssertionError("the subscriptions never got a message")
                yield current
            finally:
                collector.cancel()


def from_first(ids: list[str], history: list[str]) -> list[str]:
    """The part of `history` that starts where `ids` does, as long as `ids`."""
    start = history.index(ids[0])
    return history[start : start + len(ids)]


async def test_a_subscriber_that_stops_reading_is_cut_off_and_the_others_get_everything(
    gateway: Server, alice: Account
) -> None:
    async with scene(gateway, alice) as live:
        slow = live.slow
        baseline = memory_kib(gateway)

        # From here on the stalled client reads nothing until the server says it cut it
        # off, while the flood goes on.
        async def read_once_cut_off() -> None:
            await until(lambda: CUT_OFF_LINE in gateway.output())
            await slow.read_until(lambda _: slow.close() is not None, seconds=WAIT)

        stalled = asyncio.create_task(read_once_cut_off())
        started = time.monotonic()
        content = "x" * CONTENT_CHARS
        samples: list[int] = []
        while not stalled.done() and len(samples) < MAX_TURNS:
            await live.turn(alice, f"{len(samples):03d} {content}")
            samples.append(memory_kib(gateway))
        stall_seconds = time.monotonic() - started
        await stalled
        # The cut-off concerns nobody else: one more turn reaches the other subscriber.
        await live.turn(alice, "after")
        history = await live.ids(alice)
        await until(lambda: live.received[-1:] == history[-1:])

    assert live.received == history[history.index(live.received[0]) :]
    close = slow.close()
    assert close is not None, "no close frame reached the stalled subscriber"
    assert (close.code, close.reason) == (1008, "subscriber too slow")
    # Before the close, the stalled subscriber got results in order, nothing skipped,
    # and not all of them.
    ids = slow.result_ids()
    assert ids == from_first(ids, history)
    assert ids[-1] != history[-1]
    # The socket buffers are full after a few turns: from then on, until the cut-off,
    # what the server holds must not grow with what the stalled subscriber misses.
    assert len(samples) >= 3 * WINDOW, samples
    early = min(samples[WINDOW : 2 * WINDOW])
    late = min(samples[-WINDOW:])
    missed_kib = (len(samples) - 2 * WINDOW) * 2 * CONTENT_CHARS // 1024
    print(
        f"\nstalled {stall_seconds:.1f} s, {len(samples)} turns: the stalled subscriber got "
        f"{len(ids)} of {len(history)} messages; server VmRSS {baseline} KiB before, "
        f"{early} KiB early in the stall, {late} KiB at its end (+{late - early} KiB while "
        f"{missed_kib} KiB more were published), {max(samples)} KiB at the highest sample",
        file=sys.stderr,
    )
    assert missed_kib > 2 * GROWTH_BOUND_KIB
    assert late - early < GROWTH_BOUND_KIB
    assert late - baseline < MEMORY_BOUND_KIB
    assert gateway.output().count(CUT_OFF_LINE) == 1


async def test_a_stalled_subscriber_that_uvicorns_keepalive_closes_leaves_no_traceback(
    servers: StartServer, database_url: str, app: Starlette, alice: Account
) -> None:
    """uvicorn ends a connection whose pings go unanswered while a send to it is held;
    the held send must then end quietly, not as a crash in the log."""
    port = free_port()
    keepalive = ["--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"]
    gateway = servers(
        env=gateway_env(database_url), command=[*uvicorn_command(port), *keepalive], port=port
    )
    await gateway.wait_ready_async()
    async with scene(gateway, alice) as live:
        content = "y" * CONTENT_CHARS
        for turn in range(20):
            await live.turn(alice, f"{turn:03d} {content}")
        # uvicorn has given up on the stalled client by now; reading lets the held send go
        # on (or end, the socket being reset).
        await asyncio.sleep(1)
        await live.slow.read_until(lambda _: False, seconds=WAIT)
        await live.turn(alice, "after")
        history = await live.ids(alice)
        await until(lambda: live.received[-1:] == history[-1:])
        await asyncio.sleep(0.5)  # for what the server might still print

    assert live.received == history[history.index(live.received[0]) :]
    assert live.slow.ended
    # Not everything reached it (on a busy machine uvicorn may end it before the first).
    assert live.slow.result_ids()[-1:] != history[-1:]
    assert CUT_OFF_LINE not in gateway.output()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_whose_events_overflow_closes_its_connection(
    protocol: type[ProtocolClient],
    client: httpx.AsyncClient,
    registry: ProviderRegistry,
    alice: Account,
) -> None:
    """The broker drops events for a subscription too far behind (SubscriberTooSlow): over
    a WebSocket that closes the connection as too slow, not as an internal error."""
    broker = InProcessBroker(capacity=2)
    runtime = Runtime(models=registry, events=broker)
    endpoint = GraphQLEndpoint(runtime=runtime, limits=GraphQLLimits(), ide=False)
    session_id = await create_session(client, alice)
    topic = session_topic(session_id)
    async with (
        live_server(Starlette(routes=[WebSocketRoute(PATH, endpoint)])) as server,
        protocol.connect(server.ws_url, headers=alice.headers) as subscriber,
    ):
        await subscriber.subscribe(MESSAGE_ADDED, {"sessionId": session_id})
        await until(lambda: broker.subscriber_count(topic) == 1, seconds=10)
        # Publishing never yields to the subscription: all but two events are dropped.
        for _ in range(10):
            await broker.publish(topic, {"kind": "wake-up"})
        with pytest.raises(ConnectionClosed):
            await subscriber.receive()
        await until(lambda: broker.subscriber_count(topic) == 0, seconds=10)

    socket = subscriber.socket
    assert (socket.close_code, socket.close_reason) == (1008, "subscriber too slow")
