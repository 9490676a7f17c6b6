"""Faults around a real gateway process: its database restarted or hung while requests
flow, and one config's model provider hanging or dead.

The database tests run `chat-gateway serve` (migrations and a first admin included) on a
private PostgreSQL cluster (tests/postgres_instance.py), since the run's shared server
must never go down. A request that fails for want of the database is an internal error,
logged as such: those tests are marked `internal_errors`.

What a client must see while the database is away: each request answered at once, or at
worst within a few DATABASE_TIMEOUTs (the clients below give up after FAIL_FAST seconds,
so a hang fails the test), with the 500 envelope on REST and INTERNAL_SERVER_ERROR on
GraphQL; never a dropped connection. Once the database is back, the process recovers
without a restart: its pool reconnects, its event listener listens again ("listening for
events again"), the turn lease of a reply cut short is given back, retries with the same
idempotency key store nothing twice, and a messageAdded subscription that stayed open
through the outage receives every message, those stored while its broker was away too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.conftest import BACKEND
from tests.factories import Account, create_session, read_all_messages, send
from tests.gateway.e2e.processes import create_openai_config, gateway_env, start_gateways
from tests.postgres_instance import PostgresInstance, postgres_instance
from tests.providers.fake_openai import FakeOpenAI, held, reply
from tests.servers import CHAT_GATEWAY, Server, StartServer, child_env, free_port

postgres_only = pytest.mark.skipif(
    BACKEND != "postgres", reason="a private PostgreSQL server is stopped and started"
)

# The database ----------------------------------------------------------------------------

DATABASE_TIMEOUT = 1.0
# How long a client waits for any answer while the database is away. A restarting server
# refuses connections at once; a hung one makes a lone REST request wait for its statement
# (DATABASE_TIMEOUT) and then for asyncpg's cancel request of it (as long again, when the
# pool handed out a connection that was idle when the database hung), and the same twice
# more for the audit entry of its 500: four times the setting, plus scheduling.
FAIL_FAST = 4 * DATABASE_TIMEOUT + 1.0
OUTAGE_SECONDS = 2.0
PACE_SECONDS = 0.05  # between one sender's requests
FAILED_PACE_SECONDS = 0.25  # after a failed one (it came back at once)
ACKS_PER_PHASE = 3  # answers each sender must have before the outage, and after it
TYPING_MS = 20  # the echo config's simulated typing, a word
SLOW_WORDS = 50  # ~1 s of typing: a reply still being written when the database stops
INTERNAL = "INTERNAL_SERVER_ERROR"
MASKED = "internal server error (reference"  # nothing of the database's own message

MESSAGE_ADDED = "subscription($s: ID!) { messageAdded(sessionId: $s) { id type content } }"
SEND_MESSAGE = """
mutation($s: ID!, $c: String!, $k: String) {
  sendMessage(input: {sessionId: $s, content: $c, clientMessageId: $k}) {
    userMessage { id } aiMessage { id }
  }
}"""
CREATE_CONFIG = """
mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"""


@dataclass
class Outcome:
    """One send: `kind` is "ok" (stored and answered), "failed" (the door's 500 answer) or
    "broken" (anything else: a dropped connection, a timeout, another shape)."""

    door: str
    key: str
    content: str
    sent_at: float
    done_at: float
    kind: str
    ids: tuple[str, ...] = ()
    detail: str = ""


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; {} for anything else (a plain-text 500 is "broken")."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def send_rest(
    http: httpx.AsyncClient, account: Account, session_id: str, key: str, content: str
) -> Outcome:
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    try:
        response = await send(http, account, session_id, content, headers={"Idempotency-Key": key})
    except httpx.HTTPError as exc:
        return Outcome("rest", key, content, sent_at, loop.time(), "broken", detail=repr(exc))
    done_at = loop.time()
    body = json_object(response)
    if response.status_code == 200 and body.get("code") == 200:
        data = body["data"]
        ids = (data["user_message"]["message_id"], data["ai_message"]["message_id"])
        return Outcome("rest", key, content, sent_at, done_at, "ok", ids)
    envelope = set(body) == {"code", "message", "data"} and body["data"] is None
    if response.status_code == 500 and body.get("code") == 500 and envelope:
        return Outcome("rest", key, content, sent_at, done_at, "failed", detail=body["message"])
    return Outcome("rest", key, content, sent_at, done_at, "broken", detail=response.text)


async def send_graphql(
    http: httpx.AsyncClient, account: Account, session_id: str, key: str, content: str
) -> Outcome:
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    variables = {"s": session_id, "c": content, "k": key}
    try:
        response = await http.post(
            "/graphql",
            json={"query": SEND_MESSAGE, "variables": variables},
            headers=account.headers,
        )
    except httpx.HTTPError as exc:
        return Outcome("graphql", key, content, sent_at, loop.time(), "broken", detail=repr(exc))
    done_at = loop.time()
    body = json_object(response)
    if response.status_code == 200 and body.get("data") and not body.get("errors"):
        payload = body["data"]["sendMessage"]
        ids = (payload["userMessage"]["id"], payload["aiMessage"]["id"])
        return Outcome("graphql", key, content, sent_at, done_at, "ok", ids)
    errors = body.get("errors") or []
    codes = {error.get("extensions", {}).get("code") for error in errors}
    if response.status_code == 200 and body.get("data") is None and codes == {INTERNAL}:
        return Outcome(
            "graphql", key, content, sent_at, done_at, "failed", detail=errors[0]["message"]
        )
    return Outcome("graphql", key, content, sent_at, done_at, "broken", detail=response.text)


Sender = Callable[[httpx.AsyncClient, Account, str, str, str], Awaitable[Outcome]]
DOORS: dict[str, Sender] = {"rest": send_rest, "graphql": send_graphql}


@dataclass
class Traffic:
    """Senders that keep sending new messages (each with its own retry key) to one session
    until stopped; `pause()` returns once none of them has a request open."""

    http: httpx.AsyncClient
    account: Account
    session_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Condition = field(default_factory=asyncio.Condition)
    _open: int = 0
    _done: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, doors: list[str]) -> None:
        self._go.set()
        for number, door in enumerate(doors):
            self._tasks.append(
                asyncio.create_task(self._send_until_stopped(f"s{number}-{door}", door))
            )

    async def _send_until_stopped(self, name: str, door: str) -> None:
        for count in itertools.count(1):
            await self._go.wait()
            if self._done:
                return
            self._open += 1
            try:
                key = f"{name}-{count}"
                outcome = await DOORS[door](self.http, self.account, self.session_id, key, key)
                self.outcomes.append(outcome)
            finally:
                self._open -= 1
                async with self._idle:
                    self._idle.notify_all()
            await asyncio.sleep(PACE_SECONDS if outcome.kind == "ok" else FAILED_PACE_SECONDS)

    async def pause(self) -> None:
        self._go.clear()
        async with asyncio.timeout(FAIL_FAST * 2), self._idle:
            await self._idle.wait_for(lambda: self._open == 0)

    def resume(self) -> None:
        self._go.set()

    async def stop(self) -> None:
        self._done = True
        self._go.set()
        await asyncio.gather(*self._tasks)

    def acks_since(self, moment: float) -> Counter[str]:
        """Answered sends per sender, of those sent at or after `moment`."""
        return Counter(
            o.key.rsplit("-", 1)[0] for o in self.outcomes if o.kind == "ok" and o.sent_at >= moment
        )

    async def wait_for_acks(self, moment: float, senders: int) -> None:
        async with asyncio.timeout(30):
            while True:
                for task in self._tasks:
                    if task.done():
                        task.result()  # a sender that crashed fails the test now
                acks = self.acks_since(moment)
                if len(acks) == senders and min(acks.values()) >= ACKS_PER_PHASE:
                    return
                await asyncio.sleep(0.05)


class Watcher:
    """A client that keeps a messageAdded subscription on one session: it subscribes
    again when an operation ends (with an error, while the database is away) and connects
    again when its socket closes. `runs` holds what each subscription received."""

    def __init__(self, url: str, account: Account, session_id: str) -> None:
        self.url = url
        self.account = account
        self.session_id = session_id
        self.runs: list[list[dict[str, Any]]] = []
        self.errors: list[dict[str, Any]] = []
        self.connections = 0
        self.socket_troubles: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_watching())

    async def stop(self) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # its failure is the test's
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    @property
    def current(self) -> list[dict[str, Any]]:
        return self.runs[-1] if self.runs else []

    async def _keep_watching(self) -> None:
        while True:
            try:
                async with connect(
                    self.url,
                    subprotocols=[Subprotocol("graphql-transport-ws")],
                    additional_headers=self.account.headers,
                    open_timeout=FAIL_FAST,
                ) as socket:
                    await socket.send(json.dumps({"type": "connection_init"}))
                    async with asyncio.timeout(FAIL_FAST):
                        ack = json.loads(await socket.recv())
                    if ack.get("type") != "connection_ack":
                        self.socket_troubles.append(f"no ack: {ack}")
                        continue
                    self.connections += 1
                    for operation in itertools.count(1):
                        await self._follow(socket, str(operation))
                        await asyncio.sleep(0.25)
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError) as exc:
                self.socket_troubles.append(repr(exc))
                await asyncio.sleep(0.25)

    async def _follow(self, socket: ClientConnection, operation: str) -> None:
        """One subscription, until the server ends it."""
        self.runs.append([])
        payload = {"query": MESSAGE_ADDED, "variables": {"s": self.session_id}}
        await socket.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        while True:
            message = json.loads(await socket.recv())
            kind = message["type"]
            if kind == "ping":
                await socket.send(json.dumps({"type": "pong"}))
            elif message.get("id") != operation:
                continue
            elif kind == "next" and message["payload"].get("errors"):
                self.errors.extend(message["payload"]["errors"])
            elif kind == "next":
                self.runs[-1].append(message["payload"]["data"]["messageAdded"])
            elif kind == "error":
                self.errors.extend(message["payload"])
                return
            elif kind == "complete":
                return

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while not condition():
                if self._task is not None and self._task.done():
                    self._task.result()
                await asyncio.sleep(0.02)


async def serve_on(
    servers: StartServer, database_url: str, **settings: str
) -> tuple[Server, Account]:
    """`chat-gateway serve` on `database_url` (it migrates, creates a first admin and prints
    the admin's key); the process and that admin."""
    port = free_port()
    env = child_env(
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(port),
        BOOTSTRAP_ADMIN="true",
        LOG_LEVEL="info",
        SHUTDOWN_GRACE_SECONDS="1",
        **settings,
    )
    server = servers(env=env, command=[CHAT_GATEWAY, "serve"], port=port)
    await server.wait_ready_async()
    output = server.output()
    user_id = re.search(r"^\s+user_id: (\S+)$", output, re.MULTILINE)
    key = re.search(r"^\s+api_key: (\S+)$", output, re.MULTILINE)
    assert user_id and key, output
    return server, Account(user_id=user_id[1], key=key[1], key_id="", name="admin")


async def typing_echo_session(http: httpx.AsyncClient, admin: Account) -> str:
    """A session on an echo config that types TYPING_MS a word."""
    variables = {
        "input": {
            "provider": "echo",
            "modelName": "typing-echo",
            "modelVersion": "1",
            "parameters": {"chunk_delay_ms": TYPING_MS},
        }
    }
    response = await http.post(
        "/graphql", json={"query": CREATE_CONFIG, "variables": variables}, headers=admin.headers
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    config_id = response.json()["data"]["createModelConfig"]["id"]
    return await create_session(http, admin, model_config_id=config_id)

    raise AssertionError("unreachable")


async def wait_for_output(server: Server, text: str, seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if text in server.output():
                return
            await asyncio.sleep(0.05)


async def pipelined_statuses(server: Server, account: Account, path: str) -> list[int]:
    """GET `path`, then GET /healthz on the same connection, written at once (HTTP/1.1
    pipelining: the server answers in order): the status of each answer that came.
    A server that closes the connection after a failed request answers only the first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    host = f"127.0.0.1:{server.port}"
    auth = account.headers["Authorization"]
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n"
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    try:
        async with asyncio.timeout(FAIL_FAST):
            received = await reader.read()  # to the end: the second answer closes
    finally:
        writer.close()
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]


async def send_until_seen(traffic: Traffic, watcher: Watcher, prefix: str) -> None:
    """Send messages until the watcher's current subscription delivers one: from then on
    it is known to be listening, and must see everything stored."""
    for number in itertools.count(1):
        key = f"{prefix}-{number}"
        outcome = await send_rest(traffic.http, traffic.account, traffic.session_id, key, key)
        traffic.outcomes.append(outcome)
        try:
            await watcher.wait_for(lambda: bool(watcher.current), seconds=1.0)
            return
        except TimeoutError:
            assert number < 20, f"the subscriber receives nothing: {watcher.errors}"


@pytest.fixture
def postgres() -> Iterator[PostgresInstance]:
    """A private PostgreSQL server of the test's own, to stop and start."""
    with postgres_instance() as instance:
        yield instance


@postgres_only
@pytest.mark.internal_errors
async def test_postgresql_restarted_while_requests_flow(
    postgres: PostgresInstance, servers: StartServer
) -> None:
    pg = postgres
    server, admin = await serve_on(servers, pg.database_url, DATABASE_TIMEOUT=str(DATABASE_TIMEOUT))
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=FAIL_FAST) as http:
        session_id = await typing_echo_session(http, admin)
        watcher = Watcher(f"ws://127.0.0.1:{server.port}/graphql", admin, session_id)
        traffic = Traffic(http, admin, session_id)
        watcher.start()
        try:
            await send_until_seen(traffic, watcher, "hello")
            doors = ["rest", "rest", "graphql"]
            started = loop.time()
            traffic.start(doors)
            await traffic.wait_for_acks(started, len(doors))

            # A reply is being written (its question stored) when the database stops.
            slow = " ".join(["slow"] * SLOW_WORDS)
            slow_send = asyncio.create_task(send_rest(http, admin, session_id, "slow", slow))
            await watcher.wait_for(lambda: any(m["content"] == slow for m in watcher.current))
            stop_began = loop.time()
            await pg.astop()
            stopped = loop.time()
            # A failed request does not cost the client its connection.
            statuses = await pipelined_statuses(
                server, admin, f"/api/v1/sessions/{session_id}/messages"
            )
            await asyncio.sleep(OUTAGE_SECONDS)
            await traffic.pause()
            restart_began = loop.time()
            await pg.astart()
            restarted = loop.time()

            # The broker listens again by itself; the subscription, still open, receives
            # what was stored meanwhile and what comes next.
            await wait_for_output(server, "listening for events again")
            await send_until_seen(traffic, watcher, "marker")
            listening_run = len(watcher.runs)
            resumed = loop.time()
            traffic.resume()
            await traffic.wait_for_acks(resumed, len(doors))
            await traffic.stop()
            traffic.outcomes.append(await slow_send)

            # Every send that failed is retried with its key: it is answered now.
            acked = {o.key for o in traffic.outcomes if o.kind == "ok"}
            retried: list[Outcome] = []
            for outcome in traffic.outcomes:
                if outcome.kind != "ok" and outcome.key not in acked:
                    retry = DOORS[outcome.door]
                    retried.append(
                        await retry(http, admin, session_id, outcome.key, outcome.content)
                    )
                    acked.add(outcome.key)

            stored = await read_all_messages(http, admin, session_id)
            await watcher.wait_for(
                lambda: (
                    bool(watcher.current) and watcher.current[-1]["id"] == stored[-1]["message_id"]
                )
            )
        finally:
            await watcher.stop()
    outcomes = traffic.outcomes

    # Never a dropped connection, a timeout or another shape of answer.
    assert [o for o in outcomes + retried if o.kind == "broken"] == []
    # Before the stop, everything was answered; while the database was away, every
    # request failed with its door's 500 answer; after the restart, everything was answered.
    assert all(o.kind == "ok" for o in outcomes if o.done_at < stop_began)
    during = [o for o in outcomes if o.sent_at >= stopped and o.done_at <= restart_began]
    assert {o.kind for o in during} == {"failed"}
    assert {o.door for o in during} == {"rest", "graphql"}
    assert all(o.detail.lower().startswith(MASKED) for o in during), during
    assert statuses == [500, 200]
    assert all(o.kind == "ok" for o in outcomes if o.sent_at >= restarted)
    slow_outcome = outcomes[-1]
    assert slow_outcome.key == "slow" and slow_outcome.kind == "failed", slow_outcome
    assert all(o.kind == "ok" for o in retried), [o for o in retried if o.kind != "ok"]

    # Each message stored once: every question sent once (retries included) and its reply.
    contents = Counter(m["content"] for m in stored)
    questions = {o.content for o in outcomes}
    assert contents == Counter(
        {**dict.fromkeys(questions, 1), **{f"Echo: {q}": 1 for q in questions}}
    )
    ids = Counter(m["message_id"] for m in stored)
    answered_ids = [i for o in outcomes + retried if o.kind == "ok" for i in o.ids]
    assert all(ids[i] == 1 for i in answered_ids)
    by_id = {m["message_id"]: m["content"] for m in stored}
    for outcome in outcomes + retried:
        if outcome.kind == "ok":
            assert [by_id[i] for i in outcome.ids] == [outcome.content, f"Echo: {outcome.content}"]

    # The subscription outlived the outage: one operation throughout, no error, and it
    # received the whole history from its first message on, in order, without a gap or a
    # repeat (what was stored while its broker was away came when it listened again).
    assert watcher.errors == []
    assert len(watcher.runs) == listening_run == 1
    stored_ids = [m["message_id"] for m in stored]
    listening = [m["id"] for m in watcher.runs[-1]]
    start = stored_ids.index(listening[0])
    assert listening == stored_ids[start:]
    sent_since = [o.ids[0] for o in outcomes if o.kind == "ok" and o.sent_at >= resumed]
    assert start <= min(stored_ids.index(i) for i in sent_since)
    assert watcher.socket_troubles == [] and watcher.connections == 1

    # One process throughout, its broker reconnected by itself.
    assert server.process.poll() is None
    assert server.output().count("listening for events again") >= 1


@postgres_only
@pytest.mark.internal_errors
async def test_requests_fail_within_the_database_timeout_while_postgresql_hangs(
    postgres: PostgresInstance, servers: StartServer
) -> None:
    server, admin = await serve_on(
        servers, postgres.database_url, DATABASE_TIMEOUT=str(DATABASE_TIMEOUT)
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=FAIL_FAST) as http:
        sessions = [await create_session(http, admin) for _ in range(4)]
        # Concurrent sends leave several connections idle in the pool: the worst case.
        warm = await asyncio.gather(
            *(send_rest(http, admin, s, f"warm {n}", f"warm {n}") for n, s in enumerate(sessions))
        )
        session_id = sessions[0]
        postgres.freeze()
        try:
            during = [
                await DOORS[door](http, admin, session_id, f"hung {n}", f"hung {n}")
                for n, door in enumerate(["rest", "graphql"])
            ]
            alive = await http.get("/healthz")  # the process itself never waited
        finally:
            postgres.thaw()
        retried = [await DOORS[o.door](http, admin, session_id, o.key, o.content) for o in during]
        stored = await read_all_messages(http, admin, session_id)

    assert [o.kind for o in warm] == ["ok"] * len(sessions), warm
    # "failed" is the door's 500 answer; a client that gave up would read "broken".
    assert [o.kind for o in during] == ["failed"] * 2, during
    assert alive.status_code == 200
    assert [o.kind for o in retried] == ["ok"] * 2, retried
    questions = ["warm 0", "hung 0", "hung 1"]
    assert Counter(m["content"] for m in stored) == Counter(
        questions + [f"Echo: {q}" for q in questions]
    )
    assert server.process.poll() is None


# The model provider ------------------------------------------------------------------------

# A provider that never answers is given up after PROVIDER_TOTAL_TIMEOUT: long enough
# for the echo sends to be done well before, short enough for a quick test.
PROVIDER_TIMEOUTS = {
    "PROVIDER_CONNECT_TIMEOUT": "1",
    "PROVIDER_READ_TIMEOUT": "2",
    "PROVIDER_TOTAL_TIMEOUT": "4",
    "PROVIDER_MAX_RETRIES": "1",
}
GIVE_UP_WITHIN = float(PROVIDER_TIMEOUTS["PROVIDER_TOTAL_TIMEOUT"]) + 3.0
MODEL_FAILED = "the AI model failed to reply"


async def test_a_hanging_or_dead_provider_holds_up_only_its_own_configs_sessions(
    servers: StartServer,
    database_url: str,
    app: Starlette,
    admin: Account,
    alice: Account,
    api_key: str,
    fake_openai: FakeOpenAI,
) -> None:
    never = asyncio.Event()  # the hanging provider answers no request
    fake_openai.script(held(never, reply("too late")))
    dead_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = gateway_env(database_url, api_key, **PROVIDER_TIMEOUTS)
    [server] = await start_gateways(servers, 1, env)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=GIVE_UP_WITHIN) as http:
        hanging = await create_openai_config(http, admin, fake_openai.base_url, "hangs")
        dead = await create_openai_config(http, admin, dead_url, "is-dead")
        stuck_sessions = [
            await create_session(http, alice, model_config_id=hanging["id"]) for _ in range(3)
        ]
        dead_sessions = [
            await create_session(http, alice, model_config_id=dead["id"]) for _ in range(2)
        ]
        echo_sessions = [await create_session(http, alice) for _ in range(3)]  # the default: echo

        stuck = [
            asyncio.create_task(send(http, alice, s, f"stuck {n}"))
            for n, s in enumerate(stuck_sessions)
        ]
        await fake_openai.wait_for_requests(len(stuck_sessions))  # each one waits on the provider
        failing = [
            asyncio.create_task(send(http, alice, s, f"dead {n}"))
            for n, s in enumerate(dead_sessions)
        ]
        echoed = await asyncio.gather(
            *(send(http, alice, s, f"echo {n}") for n in range(3) for s in echo_sessions)
        )
        pending_meanwhile = [not task.done() for task in stuck]
        gave_up = await asyncio.gather(*stuck, *failing)

        for response in echoed:
            assert response.status_code == 200, response.text
            content = response.json()["data"]["ai_message"]["content"]
            assert content.startswith("Echo: echo "), content
        assert pending_meanwhile == [True] * len(stuck)
        for response in gave_up:
            body = response.json()
            assert response.status_code == 500, response.text
            assert body["code"] == 500 and body["data"] is None, body
            assert body["message"].startswith(MODEL_FAILED), body
        # The user's message is kept, for a retry.
        for session_id in (stuck_sessions[0], dead_sessions[0]):
            response = await http.get(
                f"/api/v1/sessions/{session_id}/messages", headers=alice.headers
            )
            messages = response.json()["data"]["messages"]
            assert [m["type"] for m in messages] == ["user"], messages
    # The first attempt and one retry of each stuck send reached the hanging provider.
    assert len(fake_openai.received) <= 2 * len(stuck_sessions)
