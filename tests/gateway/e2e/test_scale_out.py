"""Several server processes on one PostgreSQL database behave as one service.

Two real gateway processes, A and B (`python -m uvicorn gateway.asgi:app`), are started
once for the module on the run's database (emptied before each test, as always); tests
that kill or shut down a process start their own. Every assertion is about what a client
sees through one process of what happened in another: events, config changes, replies
picked up again, stops, retries after a crash, and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import Message
from tests.conftest import BACKEND
from tests.factories import Account, create_session, make_config, read_history, send
from tests.gateway.e2e.processes import gateway_env
from tests.gateway.e2e.sse import Event, EventReader, names, resumed_stream, streamed_send
from tests.gateway.e2e.support import eventually, openai_config, stored
from tests.providers.fake_openai import FakeOpenAI, reply, stream, wait_until
from tests.providers.frames import DONE, chunk, frame, usage_chunk
from tests.schema.ws import TransportWS
from tests.servers import (
    CHAT_GATEWAY,
    INTERNAL_ERROR_SIGNS,
    Server,
    StartServer,
    free_port,
    run_cli,
    uvicorn_command,
)

on_postgres = pytest.mark.skipif(
    BACKEND != "postgres", reason="only PostgreSQL lets several processes share events"
)
# The module's processes use a key of their own; the fake model server takes any key.
MODULE_KEY = f"cgw-e2e-{secrets.token_hex(16)}"
# A process killed mid-reply holds its session this long at most.
LEASE_SECONDS = "2"
WAIT_SECONDS = 10.0  # an upper bound for what takes milliseconds; never asserted on

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { userMessage { id } aiMessage { id content } }
}"""
CANCEL = "mutation($sessionId: ID!) { cancelReply(sessionId: $sessionId) }"
MESSAGE_ADDED = """
subscription($sessionId: ID!) { messageAdded(sessionId: $sessionId) { id type content } }
"""
SEND_STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    __typename
    ... on Message { id type content metadata }
    ... on MessageDelta { messageId delta offset }
  }
}"""
REPLY_STREAM = """
subscription($messageId: ID!, $after: Int!) {
  replyStream(messageId: $messageId, after: $after) {
    __typename
    ... on Message { id type content metadata }
    ... on MessageDelta { messageId delta offset }
  }
}"""

# A story the fake model tells in pieces, holding the rest until the test sets a gate.
STORY_START = [frame(chunk(role="assistant")), frame(chunk("Once ")), frame(chunk("upon "))]
STORY_END = [
    frame(chunk("a ")),
    frame(chunk("time.")),
    frame(chunk(finish_reason="stop")),
    frame(usage_chunk(10, 4)),
    DONE,
]
STORY = "Once upon a time."


# Processes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Processes A and B on the run's database, for the whole module (they take seconds
    to start); INFO logging, and a short turn lease."""
    if BACKEND != "postgres":
        pytest.skip("only PostgreSQL lets several processes share events")
    logs = tmp_path_factory.mktemp("scale-out")
    env = gateway_env(database_url, MODULE_KEY, LOG_LEVEL="info", TURN_LEASE_SECONDS=LEASE_SECONDS)
    started: list[Server] = []
    try:
        for _ in range(2):
            port = free_port()
            started.append(Server(uvicorn_command(port), port=port, env=env, cwd=logs, logs=logs))
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def gateways(
    pair: list[Server], app: Starlette, request: pytest.FixtureRequest
) -> Iterator[list[Server]]:
    """A and B, on the emptied database; what they print during the test must show no
    internal error (as `servers` checks for the processes it starts)."""
    marks = [len(server.output()) for server in pair]
    yield pair
    for server, mark in zip(pair, marks, strict=True):
        assert server.process.poll() is None, f"a shared process exited:\n{server.output()}"
        if request.node.get_closest_marker("internal_errors") is None:
            printed = server.output()[mark:]
            signs = [sign for sign in INTERNAL_ERROR_SIGNS if sign in printed]
            assert not signs, f"server printed {signs}:\n{printed}"


@asynccontextmanager
async def clients(*servers: Server) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per process."""
    opened: list[httpx.AsyncClient] = []
    try:
        for server in servers:
            opened.append(httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_SECONDS))
        yield opened
    finally:
        for client in opened:
            await client.aclose()


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/graphql"


async def graphql(
    http: httpx.AsyncClient, account: Account, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def story_session(http: httpx.AsyncClient, account: Account, fake: FakeOpenAI) -> str:
    config = await openai_config(fake.base_url)
    return await create_session(http, account, model_config_id=str(config.id))


def deltas_of(events: list[Event]) -> list[Event]:
    return [event for event in events if event.name == "delta"]


def assert_contiguous(deltas: list[Event], start: int) -> None:
    """Each delta starts where the one before ended; its id counts the characters so far."""
    position = start
    for event in deltas:
        assert event.data["offset"] == position, (position, deltas)
        position += len(event.data["delta"])
        assert event.id == str(position), event


# (a) Events --------------------------------------------------------------------------------


@on_postgres
async def test_a_subscriber_on_one_process_gets_every_message_sent_through_another(
    gateways: list[Server], alice: Account
) -> None:
    """messageAdded on A delivers every message sent through B, REST and GraphQL sends
    mixed and racing, in the session's order, none missing and none twice."""
    a, b = gateways
    async with clients(b) as (http_b,), TransportWS.connect(ws_url(a), headers=alice.headers) as ws:
        session_id = await create_session(http_b, alice)
        operation = await ws.subscribe(MESSAGE_ADDED, {"sessionId": session_id})
        received: list[dict[str, Any]] = []

        async def collect() -> None:
            while True:
                received.append((await ws.next_result(operation))["data"]["messageAdded"])

        async def send_rest(content: str) -> None:
            response = await send(http_b, alice, session_id, content)
            assert response.status_code == 200, response.text

        async def send_graphql(content: str) -> str:
            variables = {"input": {"sessionId": session_id, "content": content}}
            data = await graphql(http_b, alice, SEND, variables)
            reply_id: str = data["sendMessage"]["aiMessage"]["id"]
            return reply_id

        async def heard(message_id: str | None = None) -> bool:
            if collector.done():
                collector.result()  # raises what stopped it
            if message_id is None:
                return bool(received)
            return any(message["id"] == message_id for message in received)

        collector = asyncio.create_task(collect())
        try:
            # The subscription joins in its own time: it is live once it hears a send.
            async with asyncio.timeout(WAIT_SECONDS):
                while not await heard():
                    await send_rest("probe")
            # Sends racing each other, through both doors, queue on the session's turn.
            await asyncio.gather(
                *(send_rest(f"rest {n}") for n in range(4)),
                *(send_graphql(f"graphql {n}") for n in range(4)),
            )
            # A last send marks the end: whatever came twice would have come before it.
            final_id = await send_graphql("last")
            await eventually(lambda: heard(final_id))
        finally:
            collector.cancel()
            with suppress(asyncio.CancelledError):
                await collector
        history = await read_history(http_b, alice, session_id)

    expected = [(m["message_id"], m["type"].upper(), m["content"]) for m in history["messages"]]
    first = [message_id for message_id, _, _ in expected].index(received[0]["id"])
    assert [(m["id"], m["type"], m["content"]) for m in received] == expected[first:]
    questions = [m["content"] for m in received if m["type"] == "USER"]
    sent = ["last", *(f"{door} {n}" for door in ("rest", "graphql") for n in range(4))]
    assert sorted(question for question in questions if question != "probe") == sorted(sent)


# (b) Config changes ------------------------------------------------------------------------


@on_postgres
async def test_a_config_update_through_one_process_drops_the_client_in_another_at_once(
    gateways: list[Server], admin: Account, alice: Account, fake_openai: FakeOpenAI
) -> None:
    """Updating a model config through A makes B close its client of the old version
    right away, with no reply in B to notice the change."""
    a, b = gateways
    fake_openai.script(reply("Hello from the old version."))
    async with clients(a, b) as (http_a, http_b):
        config = await openai_config(fake_openai.base_url)
        session_id = await create_session(http_b, alice, model_config_id=str(config.id))
        answered = await send(http_b, alice, session_id)
        assert answered.status_code == 200, answered.text
        # B keeps its version-1 client, with a pooled connection to the model server.
        await wait_until(lambda: fake_openai.open_connections == 1)

        updated = await http_a.put(
            f"/api/v1/model-configs/{config.id}",
            json={"model_name": "gpt-fake-2"},
            headers=admin.headers,
        )
        assert updated.status_code == 200, updated.text
        line = f"model config {config.id} changed (version 1 -> 2): dropping its client"
        await asyncio.to_thread(b.wait_for_output, line, WAIT_SECONDS)
        await wait_until(lambda: fake_openai.open_connections == 0)

    assert len(fake_openai.received) == 1  # no new reply anywhere
    assert line not in a.output()  # A had no client of the config to drop


# (c) Picking a reply up again --------------------------------------------------------------


@on_postgres
async def test_a_reply_dropped_in_one_process_resumes_through_another_over_sse(
    gateways: list[Server], alice: Account, fake_openai: FakeOpenAI
) -> None:
    """A client that lost its SSE connection to A mid-reply comes back through B with
    Last-Event-ID and gets exactly the rest of the text, then ai_message and done."""
    a, b = gateways
    gate = asyncio.Event()
    fake_openai.script(stream([*STORY_START, gate, *STORY_END]))
    async with clients(a, b) as (http_a, http_b):
        session_id = await story_session(http_a, alice, fake_openai)
        try:
            async with streamed_send(http_a, alice, session_id, "Tell me a story") as events:
                user = await events.next()
                first = await events.next()
            # Leaving the block closed the connection to A; the reply goes on there.
            assert first.name == "delta" and first.id is not None
            reply_id = first.data["message_id"]
            async with resumed_stream(
                http_b, alice, session_id, reply_id, last_event_id=first.id
            ) as events:
                resumed = [await events.next()]
                gate.set()  # the rest is told only now, while B is following
                resumed += await events.rest()
        finally:
            gate.set()
        history = await stored(http_b, alice, session_id, 2)

    *deltas, ai, done = resumed
    assert names(resumed) == ["delta", "ai_message", "done"]
    assert_contiguous([first, *deltas], 0)
    assert first.data["delta"] + "".join(event.data["delta"] for event in deltas) == STORY
    assert {event.data["message_id"] for event in deltas} == {reply_id}
    assert ai.data["message_id"] == reply_id and ai.data["content"] == STORY
    assert ai.data["metadata"]["finish_reason"] == "stop"
    assert done.data == {"code": 200, "data": {"ai_message": ai.data}}
    question, answer = history
    assert question["message_id"] == user.data["message_id"]
    assert answer == {**ai.data, "type": "ai"}


@on_postgres
async def test_a_reply_dropped_in_one_process_resumes_through_another_over_graphql(
    gateways: list[Server], alice: Account, fake_openai: FakeOpenAI
) -> None:
    """sendMessageStream on A, socket closed mid-reply; replyStream(messageId, after) on
    B sends exactly the rest as MessageDelta pieces, then the stored Message."""
    a, b = gateways
    gate = asyncio.Event()
    fake_openai.script(stream([*STORY_START, gate, *STORY_END]))
    async with clients(a, b) as (http_a, http_b):
        session_id = await story_session(http_a, alice, fake_openai)
        variables = {"input": {"sessionId": session_id, "content": "Tell me a story"}}
        try:
            async with TransportWS.connect(ws_url(a), headers=alice.headers) as ws:
                operation = await ws.subscribe(SEND_STREAM, variables)
                user = (await ws.next_result(operation))["data"]["sendMessageStream"]
                first = (await ws.next_result(operation))["data"]["sendMessageStream"]
            # The socket to A is closed; the reply goes on there.
            assert first["__typename"] == "MessageDelta", first
            after = first["offset"] + len(first["delta"])
            resume = {"messageId": first["messageId"], "after": after}
            async with TransportWS.connect(ws_url(b), headers=alice.headers) as ws:
                operation = await ws.subscribe(REPLY_STREAM, resume)
                resumed = [(await ws.next_result(operation))["data"]["replyStream"]]
                gate.set()  # the rest is told only now, while B is following
                resumed += [result["data"]["replyStream"] for result in await ws.results(operation)]
        finally:
            gate.set()
        history = await stored(http_b, alice, session_id, 2)

    *deltas, ai = resumed
    assert user["__typename"] == "Message" and user["type"] == "USER"
    assert deltas and {delta["__typename"] for delta in deltas} == {"MessageDelta"}
    position = after
    for delta in deltas:
        assert delta["offset"] == position and delta["messageId"] == first["messageId"]
        position += len(delta["delta"])
    assert first["delta"] + "".join(delta["delta"] for delta in deltas) == STORY
    assert ai["__typename"] == "Message" and ai["id"] == first["messageId"]
    assert ai["content"] == STORY and ai["metadata"]["finish_reason"] == "stop"
    assert [(m["message_id"], m["content"]) for m in history] == [
        (user["id"], "Tell me a story"),
        (ai["id"], STORY),
    ]


@on_postgres
async def test_resuming_a_finished_reply_replays_the_stored_message_at_once(
    gateways: list[Server], alice: Account
) -> None:
    """A reply already stored comes back through another process as its message at
    once: ai_message then done over SSE, the Message then complete over GraphQL."""
    a, b = gateways
    async with clients(a, b) as (http_a, http_b):
        session_id = await create_session(http_a, alice)
        async with streamed_send(http_a, alice, session_id, "Say it again") as events:
            sent = await events.rest()
        ai = sent[-2]
        assert ai.name == "ai_message", sent
        async with resumed_stream(
            http_b, alice, session_id, ai.data["message_id"], last_event_id="3"
        ) as events:
            replayed = await events.rest()
        async with TransportWS.connect(ws_url(b), headers=alice.headers) as ws:
            operation = await ws.subscribe(
                REPLY_STREAM, {"messageId": ai.data["message_id"], "after": 0}
            )
            results = await ws.results(operation)

    assert names(sent) == ["user_message", "delta", "ai_message", "done"]
    assert [event.name for event in replayed] == ["ai_message", "done"]
    assert replayed[0].data == ai.data
    assert replayed[1].data == {"code": 200, "data": {"ai_message": ai.data}}
    [message] = [result["data"]["replyStream"] for result in results]
    assert message["__typename"] == "Message" and message["id"] == ai.data["message_id"]
    assert message["content"] == ai.data["content"] == "Echo: Say it again"


# (d) Stopping a reply ----------------------------------------------------------------------


async def cancel(http: httpx.AsyncClient, account: Account, session_id: str, door: str) -> bool:
    """Stop the session's reply through REST or GraphQL; whether one was running."""
    if door == "rest":
        response = await http.post(f"/api/v1/sessions/{session_id}/cancel", headers=account.headers)
        assert response.status_code == 200, response.text
        cancelled: bool = response.json()["data"]["cancelled"]
        return cancelled
    data = await graphql(http, account, CANCEL, {"sessionId": session_id})
    cancelled = data["cancelReply"]
    return cancelled


@on_postgres
@pytest.mark.parametrize("door", ["rest", "graphql"])
async def test_a_stop_through_one_process_ends_a_reply_running_in_another(
    gateways: list[Server], alice: Account, fake_openai: FakeOpenAI, door: str
) -> None:
    """POST /cancel or cancelReply through B stops the reply A is streaming: what was said
    is stored with finish_reason "cancelled", and A's stream ends with it and done."""
    a, b = gateways
    gate = asyncio.Event()  # only the stop ends this reply
    fake_openai.script(stream([*STORY_START, gate, *STORY_END]))
    async with clients(a, b) as (http_a, http_b):
        session_id = await story_session(http_a, alice, fake_openai)
        try:
            async with streamed_send(http_a, alice, session_id, "Tell me a story") as events:
                said = [await events.next() for _ in range(3)]  # the question, two pieces
                cancelled = await cancel(http_b, alice, session_id, door)
                rest = await events.rest()
            again = await cancel(http_b, alice, session_id, door)
        finally:
            gate.set()
        history = await stored(http_b, alice, session_id, 2)

    assert cancelled is True and again is False
    assert names(said) == ["user_message", "delta"]
    assert [event.name for event in rest] == ["ai_message", "done"]
    ai, done = rest
    assert ai.data["content"] == "Once upon "
    assert ai.data["metadata"]["finish_reason"] == "cancelled"
    assert done.data == {"code": 200, "data": {"user_message": said[0].data, "ai_message": ai.data}}
    question, answer = history
    assert question["message_id"] == said[0].data["message_id"]
    assert answer == {**ai.data, "type": "ai"}


# (e) A process killed mid-reply ------------------------------------------------------------


@on_postgres
async def test_a_retry_after_a_process_was_killed_mid_reply_completes_the_turn_once(
    gateways: list[Server],
    servers: StartServer,
    database_url: str,
    alice: Account,
    fake_openai: FakeOpenAI,
) -> None:
    """A third process, C, is killed (SIGKILL) while it streams a reply: the question is
    stored; the same send with the same Idempotency-Key through B waits out C's lease and
    completes the turn: one question and one reply in the history, nothing twice."""
    _, b = gateways
    never = asyncio.Event()  # C's model never finishes
    fake_openai.script(stream([*STORY_START, never]), reply("A whole answer."))
    env = gateway_env(database_url, MODULE_KEY, TURN_LEASE_SECONDS=LEASE_SECONDS)
    c = servers(env=env)
    await c.wait_ready_async()
    retry_key = {"Idempotency-Key": "story-1"}
    async with clients(b, c) as (http_b, http_c):
        session_id = await story_session(http_b, alice, fake_openai)
        try:
            async with streamed_send(
                http_c, alice, session_id, "Tell me a story", headers=retry_key
            ) as events:
                user = await events.next()
                assert (await events.next()).name == "delta"
                os.kill(c.process.pid, signal.SIGKILL)
                await asyncio.to_thread(c.process.wait, WAIT_SECONDS)
        finally:
            never.set()
        assert user.name == "user_message"
        after_kill = await read_history(http_b, alice, session_id)
        retried = await send(http_b, alice, session_id, "Tell me a story", headers=retry_key)
        history = await read_history(http_b, alice, session_id)

    assert [(m["type"], m["content"]) for m in after_kill["messages"]] == [
        ("user", "Tell me a story")
    ]
    assert retried.status_code == 200, retried.text
    pair = retried.json()["data"]
    assert pair["user_message"]["message_id"] == user.data["message_id"]
    assert pair["ai_message"]["content"] == "A whole answer."
    assert history["total"] == 2
    question, answer = history["messages"]
    assert (question["message_id"], question["type"]) == (user.data["message_id"], "user")
    assert (answer["message_id"], answer["type"]) == (pair["ai_message"]["message_id"], "ai")
    # The model was asked again with the question alone: nothing of C's partial reply.
    assert fake_openai.received[-1].body["messages"] == [
        {"role": "user", "content": "Tell me a story"}
    ]
    assert c.process.returncode == -signal.SIGKILL


# (f) Graceful shutdown ---------------------------------------------------------------------

# The slow echo types "Echo: " and these nine words one piece at a time.
SLOW_QUESTION = "one two three four five six seven eight nine"
SLOW_ANSWER = f"Echo: {SLOW_QUESTION}"


async def serve(servers: StartServer, database_url: str, *, grace: str) -> Server:
    """`chat-gateway serve --no-migrate` on the run's database, once it answers."""
    port = free_port()
    env = gateway_env(database_url, MODULE_KEY, PORT=str(port), SHUTDOWN_GRACE_SECONDS=grace)
    server = servers(command=[CHAT_GATEWAY, "serve", "--no-migrate"], port=port, env=env)
    await server.wait_ready_async()
    return server


async def slow_echo_session(http: httpx.AsyncClient, account: Account, piece_ms: int) -> str:
    config = await make_config(model_name="echo-slow", parameters={"chunk_delay_ms": piece_ms})
    return await create_session(http, account, model_config_id=str(config.id))


async def until_the_end(events: EventReader) -> list[Event]:
    """The events until the last one (done or error), or until the connection is cut."""
    received: list[Event] = []
    with suppress(httpx.TransportError):
        while not received or received[-1].name not in ("done", "error"):
            received.append(await events.next())
    return received


async def exit_status(server: Server) -> int:
    return await asyncio.to_thread(server.process.wait, 60)


@on_postgres
async def test_sigterm_lets_a_running_stream_finish_then_exits_cleanly(
    servers: StartServer, database_url: str, alice: Account
) -> None:
    """SIGTERM to `chat-gateway serve` while a reply streams (about 3 s, well within the
    grace): the stream goes on to ai_message and done, the reply is stored whole, and the
    process exits with status 0."""
    server = await serve(servers, database_url, grace="20")
    async with clients(server) as (http,):
        session_id = await slow_echo_session(http, alice, piece_ms=300)
        async with streamed_send(http, alice, session_id, SLOW_QUESTION) as events:
            received = [await events.next(), await events.next()]  # the question, a piece
            server.process.send_signal(signal.SIGTERM)
            received += await until_the_end(events)
    status = await exit_status(server)
    question, answer = await Message.filter(session_id=session_id).order_by("seq")

    assert names(received) == ["user_message", "delta", "ai_message", "done"]
    *_, ai, done = received
    assert "".join(event.data["delta"] for event in deltas_of(received)) == SLOW_ANSWER
    assert ai.data["content"] == SLOW_ANSWER
    assert ai.data["metadata"]["finish_reason"] == "stop"
    assert done.data["data"]["ai_message"] == ai.data
    assert str(question.id) == received[0].data["message_id"]
    assert (str(answer.id), answer.content) == (ai.data["message_id"], SLOW_ANSWER)
    assert status == 0, server.output()


@on_postgres
async def test_sigterm_stores_a_reply_longer_than_the_grace_as_cancelled_then_exits_cleanly(
    servers: StartServer, database_url: str, alice: Account
) -> None:
    """SIGTERM with SHUTDOWN_GRACE_SECONDS=1 while a reply of about 8 s streams: shortly
    before the grace ends, what was said is stored with finish_reason "cancelled", the
    stream ends with that message (not with a cut), and the process exits with status 0."""
    server = await serve(servers, database_url, grace="1")
    async with clients(server) as (http,):
        session_id = await slow_echo_session(http, alice, piece_ms=800)
        async with streamed_send(http, alice, session_id, SLOW_QUESTION) as events:
            received = [await events.next(), await events.next()]  # the question, a piece
            server.process.send_signal(signal.SIGTERM)
            received += await until_the_end(events)
    status = await exit_status(server)
    question, answer = await Message.filter(session_id=session_id).order_by("seq")

    assert names(received) == ["user_message", "delta", "ai_message", "done"]
    *_, ai, done = received
    assert str(question.id) == received[0].data["message_id"]
    assert answer.metadata["finish_reason"] == "cancelled"
    assert answer.content.startswith("Echo: ") and SLOW_ANSWER.startswith(answer.content)
    assert answer.content != SLOW_ANSWER
    assert "".join(event.data["delta"] for event in deltas_of(received)) == answer.content
    assert (ai.data["message_id"], ai.data["content"]) == (str(answer.id), answer.content)
    assert ai.data["metadata"]["finish_reason"] == "cancelled"
    assert done.data["data"]["ai_message"] == ai.data
    assert status == 0, server.output()


# (g) Several workers need PostgreSQL -------------------------------------------------------


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    """`chat-gateway serve --workers 2` on SQLite stops at once, saying to use PostgreSQL
    (on either backend: it never reaches a database)."""
    env = gateway_env(f"sqlite://{tmp_path / 'gateway.sqlite3'}", MODULE_KEY)
    result = run_cli("serve", "--workers", "2", env=env, cwd=tmp_path)

    assert result.returncode != 0, result
    assert "PostgreSQL" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gateway.sqlite3").exists()  # nothing was migrated
