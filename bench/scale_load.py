"""Scale-out load check: do several server processes behave as one?

    .venv/bin/python bench/scale_load.py [--processes 1,2] [--users 20] [--seconds 30]
        [--echo-delay-ms 5] [--settle 2] [--keep-alive] [--json [FILE]] [--server-root DIR]

    # a quick one while developing
    .venv/bin/python bench/scale_load.py --processes 1,2 --users 10 --seconds 10

Needs `make install` (the .venv) and PostgreSQL (`--postgres-url`, default
postgres://postgres@127.0.0.1:5432/postgres, where scratch databases may be created;
`scripts/ensure-services` starts one). For each process count N of `--processes`:

1. creates a scratch database and starts `chat-gateway serve --workers N` on it in a
   subprocess (ACCESS_LOG off, LOG_LEVEL warning, BOOTSTRAP_ADMIN on: the first admin's
   key is read from what the server prints; the code is this checkout's, or that of
   `--server-root`, e.g. `git archive <commit> | tar -x -C DIR`, to compare commits).
   The workers share one listening socket, so the kernel spreads connections over the
   processes: one user's requests and its WebSocket land on different processes;
2. as that admin, creates an `echo` model config (GraphQL `createModelConfig`) with
   `prefix: "Echo: "` and `chunk_delay_ms: --echo-delay-ms` (simulated typing per word,
   default 5 ms: a reply here has 8 to 27 words, so takes 40 to 135 ms to type), and
   creates `--users` users with one API key each (what `chat-gateway user create` does,
   for all users in one run of the server's own code);
3. drives the users for `--seconds`, each in a closed loop (`--think-ms` between actions,
   default 0). Each request opens a new TCP connection, so that the kernel picks a
   process for each request as a load balancer in front of several processes would
   (`--keep-alive` reuses `--connections-per-user` connections instead: the processes
   then still share the load, but one user's requests mostly stay on one process).
   Each user also holds its own GraphQL WebSocket (graphql-transport-ws, the key in the
   `connection_init` payload), opened when it opens its first session. A user
   opens a session (REST and GraphQL alternately), subscribes to `messageAdded` for it
   on its WebSocket, waits `--subscribe-grace` (the protocol has no "subscribed"
   acknowledgement) and only then sends into it; after `--turns-per-session` turns it
   opens the next session and keeps the old subscription open. Actions, by weight:
   REST send with an Idempotency-Key 30 (of which `--replay-ratio` are sent a second
   time with the same key, as a client retry does: the answer must name the same
   messages), REST send streamed as server-sent events 15, GraphQL `sendMessage` 15,
   GraphQL `sendMessageStream` over the WebSocket 10, REST history page 10, GraphQL
   `session { messages(last: 20) }` 10, other GraphQL queries (`me`, `sessions`,
   `modelConfigs`) 10;
4. records every acknowledged turn (the user and AI message ids in the order the server
   acknowledged them; one user sends into one session at a time, so that order is the
   session's order), the latency of every request by kind, every error (a non-2xx
   status, a GraphQL error, an SSE `error` event, a transport error, a WebSocket closed
   or an operation ended by the server) and every message id each subscriber saw;
5. after the load, waits `--settle` seconds with the subscriptions still open, then
   checks against the database (asyncpg) and both API doors:
   - lost: acknowledged messages not stored;
   - duplicated: extra stored copies of a message (every message text is unique);
   - unacknowledged: stored messages no answer named (e.g. a send that failed);
   - order errors: sessions whose stored order (seq) differs from the acknowledged
     order, or whose seq numbers are not 1..n;
   - history mismatches: sessions whose REST history (all pages) or GraphQL
     `session.messages` connection (all pages) differs from the stored sequence;
   - wrong replies: an echo reply that is not "Echo: " + its question;
   - replay mismatches: a retried send whose answer names other messages;
   - missed events: messages stored in a subscribed session (all of them, since every
     send comes after the subscription) that its subscriber never received; also
     duplicate events and events naming messages not stored in the session.
   Subscribers that received events in another order than the stored one are counted
   but not held against the run (the contract does not promise an order).

Prints a table for each N (throughput in requests/s and turns/s, p50/p99 latency per
kind, errors, the checks above, server RSS and CPU per process) and a comparison table;
`--json` prints the same figures as JSON instead, `--json FILE` writes them to FILE as
well as printing the tables (progress goes to stderr). Server logs are kept in a
temporary folder whose path is printed. Exits 1 when any run had an error or anything
was lost, duplicated, unacknowledged, out of order, mismatched or missed, or when no turn
was acknowledged at all; 0 otherwise. The machine is shared by the server, PostgreSQL and
this client, so absolute figures measure the machine as much as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
import orjson

from db import scratch

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PREFIX = "Echo: "
WS_PROTOCOL = "graphql-transport-ws"
# The server allows 100 subscriptions per WebSocket; a user opens another socket before.
SUBSCRIPTIONS_PER_SOCKET = 90
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORDS = (
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"),
    *("juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"),
    *("sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"),
)

T = TypeVar("T")

CREATE_CONFIG = """mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { id version }
}"""
CREATE_SESSION = """mutation($input: CreateSessionInput) {
  createSession(input: $input) { id }
}"""
SEND_MESSAGE = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { userMessage { id } aiMessage { id content } }
}"""
SEND_STREAM = """subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    __typename
    ... on MessageDelta { messageId delta }
    ... on Message { id type content }
  }
}"""
MESSAGE_ADDED = """subscription($id: ID!) {
  messageAdded(sessionId: $id) { id type }
}"""
RECENT_MESSAGES = """query($id: ID!) {
  session(id: $id) {
    messageCount
    messages(last: 20) { edges { node { id type content createdAt metadata } } }
  }
}"""
HISTORY_PAGE = """query($id: ID!, $after: String) {
  session(id: $id) {
    messages(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id } }
    }
  }
}"""
OTHER_QUERIES = (
    "{ me { id name role } }",
    "{ sessions(first: 10) { totalCount edges { node { id messageCount createdAt"
    " modelConfig { modelName provider } } } } }",
    "{ modelConfigs { id modelName modelVersion provider parameters isDefault version } }",
)


class Failed(Exception):
    """A request the server answered with an error, or not as its contract says."""


# ---------------------------------------------------------------------------- recording


@dataclass
class Stats:
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    turns: int = 0
    wrong_replies: int = 0
    replay_mismatches: int = 0

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies[kind].append(seconds)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 20:
            self.samples.append(f"{kind}: {what[:300]}")

    async def attempt(self, kind: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run one request, recording its latency or its error; None when it failed."""
        started = time.perf_counter()
        try:
            result = await call()
        except Failed as exc:
            self.error(kind, str(exc))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.error(kind, f"transport: {type(exc).__name__}: {exc}")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            self.error(kind, f"malformed answer: {type(exc).__name__}: {exc}")
        else:
            self.ok(kind, time.perf_counter() - started)
            return result
        return None


@dataclass
class SessionRecord:
    id: str
    owner: int
    key: str
    # User and AI message ids, in the order the server acknowledged them.
    acknowledged: list[str] = field(default_factory=list)
    turns: int = 0
    subscribed: bool = False
    # Message ids messageAdded delivered, in arrival order.
    events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Account:
    user_id: str
    api_key: str


# ---------------------------------------------------------------------------- the WebSocket


class GraphQLSocket:
    """One graphql-transport-ws connection: messageAdded subscriptions and streamed sends."""

    def __init__(self, base: str, key: str, stats: Stats) -> None:
        self.url = base + "/graphql"
        self.key = key
        self.stats = stats
        self.subscriptions: dict[str, SessionRecord] = {}
        self.operations: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.closing = False
        self.dead = False
        self._ids = 0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> GraphQLSocket:
        self._http = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
        self._ws = await self._http.ws_connect(self.url, protocols=(WS_PROTOCOL,), heartbeat=None)
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}
        await self._ws.send_str(orjson.dumps(init).decode())
        reply = await asyncio.wait_for(self._ws.receive(), timeout=30)
        if reply.type != aiohttp.WSMsgType.TEXT or orjson.loads(reply.data).get("type") != (
            "connection_ack"
        ):
            raise Failed(f"no connection_ack: {reply.type!r} {reply.data!r}")
        self._reader = asyncio.create_task(self._read())
        return self

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self.dead:
            raise Failed("the WebSocket is closed")
        await self._ws.send_str(orjson.dumps(message).decode())

    async def subscribe(self, record: SessionRecord) -> None:
        op = self._next_id()
        self.subscriptions[op] = record
        payload = {"query": MESSAGE_ADDED, "variables": {"id": record.id}}
        await self._send({"id": op, "type": "subscribe", "payload": payload})
        record.subscribed = True

    async def stream(self, variables: dict[str, Any]) -> list[dict[str, Any]]:
        """One sendMessageStream operation; returns its Message nodes (deltas dropped)."""
        op = self._next_id()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.operations[op] = queue
        try:
            payload = {"query": SEND_STREAM, "variables": variables}
            await self._send({"id": op, "type": "subscribe", "payload": payload})
            messages: list[dict[str, Any]] = []
            while True:
                frame = await asyncio.wait_for(queue.get(), timeout=REQUEST_TIMEOUT.total)
                kind = frame.get("type")
                if kind == "complete":
                    return messages
                if kind == "next":
                    body = frame["payload"]
                    if body.get("errors"):
                        raise Failed(f"GraphQL errors: {body['errors']}")
                    node = body["data"]["sendMessageStream"]
                    if node["__typename"] == "Message":
                        messages.append(node)
                elif kind == "error":
                    raise Failed(f"GraphQL errors: {frame.get('payload')}")
                else:
                    raise Failed(f"WebSocket ended the operation: {frame}")
        finally:
            self.operations.pop(op, None)

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    await self._dispatch(orjson.loads(message.data))
                except (KeyError, TypeError, ValueError) as exc:
                    self.stats.error("ws frame", f"malformed: {exc}: {message.data[:200]}")
        except (aiohttp.ClientError, OSError) as exc:
            self.stats.error("ws", f"transport: {type(exc).__name__}: {exc}")
        self.dead = True
        if not self.closing:
            self.stats.error("ws", f"WebSocket closed by the server (code {ws.close_code})")
        for queue in self.operations.values():
            queue.put_nowait({"type": "closed", "code": ws.close_code})

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        kind, op = frame.get("type"), frame.get("id")
        if kind == "ping":
            await self._send({"type": "pong"})
            return
        if kind == "pong":
            return
        record = self.subscriptions.get(str(op))
        if record is not None:
            if kind == "next" and not frame["payload"].get("errors"):
                record.events.append(frame["payload"]["data"]["messageAdded"]["id"])
            elif not self.closing:
                self.stats.error("ws messageAdded", f"session {record.id}: {frame}")
            return
        queue = self.operations.get(str(op))
        if queue is not None:
            queue.put_nowait(frame)

    async def close(self) -> None:
        self.closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, timeout=5)
        if self._http is not None:
            await self._http.close()


# ---------------------------------------------------------------------------- one user


@dataclass
class Plan:
    base: str
    config_id: str
    deadline: float
    turns_per_session: int
    subscribe_grace: float
    replay_ratio: float
    think: float
    connections: int
    keep_alive: bool


Action = Callable[[SessionRecord], Awaitable[bool]]


class SimulatedUser:
    def __init__(self, plan: Plan, index: int, account: Account, stats: Stats, seed: int) -> None:
        self.plan = plan
        self.index = index
        self.account = account
        self.stats = stats
        self.rng = random.Random(seed * 1_000_003 + index)
        self.sessions: list[SessionRecord] = []
        self.sockets: list[GraphQLSocket] = []
        self.created = 0
        self._http: aiohttp.ClientSession | None = None
        # What a user does in a session it has open, and how often (relative weights).
        self.actions: list[Action] = [
            self.rest_send,
            self.rest_send_sse,
            self.gql_send,
            self.ws_send_stream,
            self.rest_history,
            self.gql_history,
            self.gql_query,
        ]
        self.weights = [30, 15, 15, 10, 10, 10, 10]

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    # -- requests

    async def rest(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = orjson.dumps(body) if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.http.request(method, path, data=data, headers=all_headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise Failed(f"HTTP {response.status}: {payload[:200]!r}")
            return orjson.loads(payload)["data"]

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = orjson.dumps({"query": query, "variables": variables or {}})
        headers = {"Content-Type": "application/json"}
        async with self.http.post("/graphql", data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                raise Failed(f"HTTP {response.status}: {payload[:200]!r}")
            answer = orjson.loads(payload)
            if answer.get("errors"):
                raise Failed(f"GraphQL errors: {answer['errors']}")
            return answer["data"]

    async def rest_sse(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        """A streamed send; returns the `data` of its `done` event."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Idempotency-Key": key,
        }
        async with self.http.post(path, data=orjson.dumps(body), headers=headers) as response:
            if response.status != 200:
                raise Failed(f"HTTP {response.status}: {(await response.read())[:200]!r}")
            if not response.content_type.startswith("text/event-stream"):
                raise Failed(f"not an event stream: {response.content_type}")
            event, data = "", []
            done: dict[str, Any] | None = None
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and event:
                    payload = orjson.loads("\n".join(data))
                    if event == "error":
                        raise Failed(f"SSE error event: {payload}")
                    if event == "done":
                        done = payload["data"]
                    event, data = "", []
            if done is None:
                raise Failed("the event stream ended without a done event")
            return done

    # -- the loop

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.plan.connections, force_close=not self.plan.keep_alive
        )
        headers = {"Authorization": f"Bearer {self.account.api_key}"}
        async with aiohttp.ClientSession(
            base_url=self.plan.base,
            connector=connector,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
        ) as http:
            self._http = http
            while time.perf_counter() < self.plan.deadline:
                session = self.sessions[-1] if self.sessions else None
                if session is None or session.turns >= self.plan.turns_per_session:
                    if await self.open_session() is None:
                        await asyncio.sleep(0.1)  # no hot loop against a failing server
                    continue
                action = self.rng.choices(self.actions, self.weights)[0]
                if not await action(session):
                    await asyncio.sleep(0.1)
                if self.plan.think:
                    await asyncio.sleep(self.rng.uniform(0, 2 * self.plan.think))
            self._http = None

    async def socket(self) -> GraphQLSocket | None:
        current = self.sockets[-1] if self.sockets else None
        if (
            current is None
            or current.dead
            or len(current.subscriptions) >= (SUBSCRIPTIONS_PER_SOCKET)
        ):
            current = GraphQLSocket(self.plan.base, self.account.api_key, self.stats)
            self.sockets.append(current)
            if await self.stats.attempt("ws connect", current.open) is None:
                current.dead = True
                return None
        return current

    async def open_session(self) -> SessionRecord | None:
        via_rest = (self.created + self.index) % 2 == 0
        self.created += 1
        if via_rest:
            body = {"user_id": self.account.user_id, "model_config_id": self.plan.config_id}
            data = await self.stats.attempt(
                "REST create session", lambda: self.rest("POST", "/api/v1/sessions", body)
            )
            session_id = data["session_id"] if data else None
        else:
            variables = {"input": {"modelConfigId": self.plan.config_id}}
            data = await self.stats.attempt(
                "GQL createSession", lambda: self.graphql(CREATE_SESSION, variables)
            )
            session_id = data["createSession"]["id"] if data else None
        if session_id is None:
            return None
        record = SessionRecord(id=session_id, owner=self.index, key=self.account.api_key)
        self.sessions.append(record)
        socket = await self.socket()
        if socket is not None:
            try:
                await socket.subscribe(record)
            except (Failed, aiohttp.ClientError, OSError) as exc:
                self.stats.error("ws subscribe", str(exc))
        await asyncio.sleep(self.plan.subscribe_grace)
        return record

    def question(self, session: SessionRecord) -> str:
        words = " ".join(self.rng.choices(WORDS, k=self.rng.randint(1, 20)))
        return f"user {self.index} turn {session.turns} of {session.id[:8]}: {words}"

    def acknowledge(
        self, session: SessionRecord, user_id: str, ai_id: str, question: str, reply: str
    ) -> None:
        session.acknowledged += [user_id, ai_id]
        session.turns += 1
        self.stats.turns += 1
        if reply != PREFIX + question:
            self.stats.wrong_replies += 1
            self.stats.samples.append(f"wrong reply to {question!r}: {reply!r}"[:300])

    def send_body(self, session: SessionRecord, question: str) -> dict[str, Any]:
        return {
            "user_id": self.account.user_id,
            "message": question,
            "metadata": {"bench": "scale_load", "user": self.index, "turn": session.turns},
        }

    async def rest_send(self, session: SessionRecord) -> bool:
        question = self.question(session)
        body = self.send_body(session, question)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        path = f"/api/v1/sessions/{session.id}/messages"
        data = await self.stats.attempt("REST send", lambda: self.rest("POST", path, body, headers))
        if data is None:
            return False
        user_id, ai = data["user_message"]["message_id"], data["ai_message"]
        self.acknowledge(session, user_id, ai["message_id"], question, ai["content"])
        if self.rng.random() < self.plan.replay_ratio:
            again = await self.stats.attempt(
                "REST send (replay)", lambda: self.rest("POST", path, body, headers)
            )
            if again is None:
                return False
            named = (again["user_message"]["message_id"], again["ai_message"]["message_id"])
            if named != (user_id, ai["message_id"]):
                self.stats.replay_mismatches += 1
        return True

    async def rest_send_sse(self, session: SessionRecord) -> bool:
        question = self.question(session)
        body = self.send_body(session, question)
        path = f"/api/v1/sessions/{session.id}/messages"
        key = uuid.uuid4().hex
        done = await self.stats.attempt("REST send (SSE)", lambda: self.rest_sse(path, body, key))
        if done is None:
            return False
        ai = done["ai_message"]
        user_id = done["user_message"]["message_id"]
        self.acknowledge(session, user_id, ai["message_id"], question, ai["content"])
        return True

    async def gql_send(self, session: SessionRecord) -> bool:
        question = self.question(session)
        variables = {
            "input": {
                "sessionId": session.id,
                "content": question,
                "metadata": {"bench": "scale_load", "turn": session.turns},
                "clientMessageId": uuid.uuid4().hex,
            }
        }
        data = await self.stats.attempt(
            "GQL sendMessage", lambda: self.graphql(SEND_MESSAGE, variables)
        )
        if data is None:
            return False
        sent = data["sendMessage"]
        ai = sent["aiMessage"]
        self.acknowledge(session, sent["userMessage"]["id"], ai["id"], question, ai["content"])
        return True

    async def ws_send_stream(self, session: SessionRecord) -> bool:
        socket = await self.socket()
        if socket is None:
            return False
        question = self.question(session)
        variables = {
            "input": {
                "sessionId": session.id,
                "content": question,
                "clientMessageId": uuid.uuid4().hex,
            }
        }
        nodes = await self.stats.attempt("WS sendMessageStream", lambda: socket.stream(variables))
        if nodes is None:
            return False
        if [node["type"] for node in nodes] != ["USER", "AI"]:
            self.stats.error("WS sendMessageStream", f"stream gave messages {nodes}")
            return False
        self.acknowledge(session, nodes[0]["id"], nodes[1]["id"], question, nodes[1]["content"])
        return True

    async def rest_history(self, session: SessionRecord) -> bool:
        last_page = max(1, math.ceil(len(session.acknowledged) / 20))
        page = self.rng.choice((1, last_page))
        path = f"/api/v1/sessions/{session.id}/messages?page_size=20&page_num={page}"
        return await self.stats.attempt("REST history", lambda: self.rest("GET", path)) is not None

    async def gql_history(self, session: SessionRecord) -> bool:
        variables = {"id": session.id}
        data = await self.stats.attempt(
            "GQL session.messages", lambda: self.graphql(RECENT_MESSAGES, variables)
        )
        return data is not None

    async def gql_query(self, session: SessionRecord) -> bool:
        query = self.rng.choice(OTHER_QUERIES)
        return await self.stats.attempt("GQL other query", lambda: self.graphql(query)) is not None

    async def close(self) -> None:
        for connection in self.sockets:
            await connection.close()


# ---------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children[parent].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = (Path(f"/proc/{pid}/stat").read_text()).rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def role(pid: int, root: int) -> str:
    """What a process of the server's tree is, for the report."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        command = b""
    if pid == root:
        return "main"
    if b"resource_tracker" in command:
        return "resource tracker"
    return "worker" if b"spawn_main" in command else "child"


@dataclass
class Server:
    base: str
    pid: int
    admin_key: str
    log: Path
    environment: dict[str, str]
    root: Path

    def cpu(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in process_tree(self.pid)}

    def processes(self, cpu_before: dict[int, float]) -> list[dict[str, Any]]:
        return [
            {
                "pid": pid,
                "role": role(pid, self.pid),
                "cpu_s": round(cpu_seconds(pid) - cpu_before.get(pid, 0.0), 2),
                "rss_mib": round(rss_mib(pid), 1),
            }
            for pid in process_tree(self.pid)
        ]


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


async def wait_ready(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.returncode is not None:
                break
            with suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start (exit {process.returncode}):\n{tail(log)}")


@asynccontextmanager
async def running_server(
    database_url: str, workers: int, logs: Path, root: Path
) -> AsyncIterator[Server]:
    """`chat-gateway serve --workers N` on `database_url`, its code from `root`; stopped on
    exit."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "ACCESS_LOG": "false",
        "BOOTSTRAP_ADMIN": "true",
        # One admin key sends the whole load: rate limits off (they are measured apart).
        "RATE_LIMIT_PER_MINUTE": "0",
        "REPLY_RATE_LIMIT_PER_MINUTE": "0",
        "MAX_STREAMS_PER_USER": "0",
    }
    environment.pop("WORKERS", None)
    if root != ROOT:  # its packages before the ones installed (editable) from this checkout
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    out, err = logs / f"serve-{workers}.out", logs / f"serve-{workers}.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "chat-gateway"),
            "serve",
            "--workers",
            str(workers),
            env=environment,
            cwd=root,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, process, err)
        found = re.search(r"api_key:\s*(\S+)", out.read_text())
        if found is None:
            raise RuntimeError(f"the server printed no first admin key (see {out})")
        yield Server(base, process.pid, found.group(1), err, environment, root)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def create_echo_config(base: str, admin_key: str, delay_ms: int) -> str:
    variables = {
        "input": {
            "provider": "echo",
            "modelName": "echo",
            "modelVersion": f"scale-load-{delay_ms}ms",
            "parameters": {"prefix": PREFIX, "chunk_delay_ms": delay_ms},
        }
    }
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{base}/graphql", json={"query": CREATE_CONFIG, "variables": variables}) as r,
    ):
        answer = await r.json()
    if r.status != 200 or answer.get("errors"):
        raise RuntimeError(f"could not create the echo config: {answer}")
    config_id: str = answer["data"]["createModelConfig"]["id"]
    return config_id


# What `chat-gateway user create NAME` does, for many users in one process (one command
# run per user would cost a second and a half each).
CREATE_USERS = """
import asyncio, json, sys
from db.services import users
from gateway.bootstrap import orm
from gateway.settings import load_settings

async def main():
    made = []
    async with orm(load_settings()):
        for index in range(int(sys.argv[1])):
            user, issued = await users.create(name=f"load-user-{index}")
            made.append({"user_id": str(user.id), "api_key": issued.secret})
    print(json.dumps(made))

asyncio.run(main())
"""


async def create_users(server: Server, count: int) -> list[Account]:
    """`count` users with one API key each, made by the server's own code."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CREATE_USERS,
        str(count),
        env=server.environment,
        cwd=server.root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"could not create users: {stderr.decode(errors='replace')[-2000:]}")
    made = json.loads(stdout.decode().strip().splitlines()[-1])
    return [Account(user_id=row["user_id"], api_key=row["api_key"]) for row in made]


# ---------------------------------------------------------------------------- checking


def asyncpg_url(database_url: str) -> str:
    return "postgresql://" + database_url.split("://", 1)[1]


async def api_history(base: str, session: SessionRecord) -> tuple[list[str], list[str]]:
    """The session's message ids as the REST door lists them (all pages) and as the
    GraphQL `session.messages` connection does (all pages)."""
    headers = {"Authorization": f"Bearer {session.key}"}
    rest_ids: list[str] = []
    graphql_ids: list[str] = []
    async with aiohttp.ClientSession(base_url=base, headers=headers) as http:
        page = 1
        while True:
            path = f"/api/v1/sessions/{session.id}/messages?page_size=100&page_num={page}"
            async with http.get(path) as response:
                if response.status != 200:
                    raise Failed(f"REST history: HTTP {response.status}")
                data = (await response.json())["data"]
            rest_ids += [message["message_id"] for message in data["messages"]]
            if not data["messages"] or len(rest_ids) >= data["total"]:
                break
            page += 1
        after: str | None = None
        while True:
            body = {"query": HISTORY_PAGE, "variables": {"id": session.id, "after": after}}
            async with http.post("/graphql", json=body) as response:
                answer = await response.json()
            if response.status != 200 or answer.get("errors"):
                raise Failed(f"GraphQL history: {answer}")
            connection = answer["data"]["session"]["messages"]
            graphql_ids += [edge["node"]["id"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
    return rest_ids, graphql_ids


async def verify(base: str, database_url: str, sessions: Sequence[SessionRecord]) -> dict[str, Any]:
    connection = await asyncpg.connect(asyncpg_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT session_id::text AS session_id, id::text AS id, seq, type, content "
            "FROM messages ORDER BY session_id, seq"
        )
        all_sessions = await connection.fetchval("SELECT count(*) FROM chat_sessions")
    finally:
        await connection.close()
    stored: defaultdict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        stored[row["session_id"]].append(row)

    figures: Counter[str] = Counter()
    problems: list[str] = []
    limit = asyncio.Semaphore(8)

    async def doors(record: SessionRecord) -> tuple[list[str], list[str]] | None:
        async with limit:
            try:
                return await api_history(base, record)
            except (Failed, aiohttp.ClientError, KeyError, TypeError, ValueError) as exc:
                problems.append(f"history of {record.id}: {exc}")
                return None

    listed = await asyncio.gather(*(doors(record) for record in sessions))
    for record, through_api in zip(sessions, listed, strict=True):
        messages = stored.get(record.id, [])
        ids = [row["id"] for row in messages]
        acknowledged = set(record.acknowledged)
        figures["messages_acknowledged"] += len(record.acknowledged)
        figures["messages_stored"] += len(ids)
        figures["lost"] += len(acknowledged - set(ids))
        copies: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for row in messages:
            copies[(row["type"], row["content"])].append(row["id"])
        for same in copies.values():
            figures["duplicated"] += len(same) - 1
            if not acknowledged.intersection(same):
                figures["unacknowledged"] += 1
        in_order = [i for i in ids if i in acknowledged] == [
            i for i in record.acknowledged if i in set(ids)
        ]
        numbered = [row["seq"] for row in messages] == list(range(1, len(messages) + 1))
        if not (in_order and numbered):
            figures["order_errors"] += 1
            problems.append(f"session {record.id}: stored order differs from acknowledged")
        if through_api is None or through_api != (ids, ids):
            figures["history_mismatches"] += 1
            if through_api is not None:
                problems.append(f"session {record.id}: a door's history differs from storage")
        if record.subscribed:
            figures["subscriptions"] += 1
            seen = set(record.events)
            figures["events_expected"] += len(ids)
            figures["events_received"] += len(record.events)
            missed = len(set(ids) - seen)
            figures["missed_events"] += missed
            figures["subscribers_missing_events"] += missed > 0
            figures["subscribers_without_any_event"] += bool(ids) and not seen
            figures["duplicate_events"] += len(record.events) - len(seen)
            figures["unknown_events"] += len(seen - set(ids))
            arrival = list(dict.fromkeys(e for e in record.events if e in set(ids)))
            figures["subscribers_out_of_order"] += arrival != [i for i in ids if i in seen]
    figures["sessions"] = len(sessions)
    figures["sessions_in_database"] = all_sessions
    return {"figures": dict(figures), "problems": problems[:20]}


# ---------------------------------------------------------------------------- one run


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


FAILING = (
    "errors",
    "lost",
    "duplicated",
    "unacknowledged",
    "order_errors",
    "history_mismatches",
    "wrong_replies",
    "replay_mismatches",
    "missed_events",
    "duplicate_events",
    "unknown_events",
)


async def run_once(options: argparse.Namespace, workers: int, logs: Path) -> dict[str, Any]:
    database_url = await scratch.create_postgres(options.postgres_url, prefix="cgw_scale")
    stats = Stats()
    try:
        async with running_server(database_url, workers, logs, options.server_root) as server:
            config_id = await create_echo_config(
                server.base, server.admin_key, options.echo_delay_ms
            )
            accounts = await create_users(server, options.users)
            log(f"[{workers} process(es)] {options.users} users for {options.seconds:g} s ...")
            cpu_before, client_before = server.cpu(), time.process_time()
            started = time.perf_counter()
            plan = Plan(
                base=server.base,
                config_id=config_id,
                deadline=started + options.seconds,
                turns_per_session=options.turns_per_session,
                subscribe_grace=options.subscribe_grace,
                replay_ratio=options.replay_ratio,
                think=options.think_ms / 1000,
                connections=options.connections_per_user,
                keep_alive=options.keep_alive,
            )
            users = [
                SimulatedUser(plan, index, account, stats, options.seed)
                for index, account in enumerate(accounts)
            ]
            await asyncio.gather(*(user.run() for user in users))
            elapsed = time.perf_counter() - started
            processes = server.processes(cpu_before)
            client_cpu = time.process_time() - client_before
            await asyncio.sleep(options.settle)
            for user in users:
                await user.close()
            sessions = [record for user in users for record in user.sessions]
            log(f"[{workers} process(es)] checking {len(sessions)} sessions ...")
            checked = await verify(server.base, database_url, sessions)
            log_text = server.log.read_text(errors="replace")
    finally:
        await scratch.drop_postgres(options.postgres_url, database_url)

    requests = sum(len(v) for v in stats.latencies.values()) + sum(stats.errors.values())
    latency = {
        kind: {
            "count": len(values),
            "errors": stats.errors.get(kind, 0),
            "p50_ms": round(percentile(values, 0.5) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }
        for kind, values in sorted(stats.latencies.items())
    }
    figures = checked["figures"]
    result: dict[str, Any] = {
        "processes": workers,
        "users": options.users,
        "seconds": round(elapsed, 2),
        "echo_delay_ms": options.echo_delay_ms,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "turns": stats.turns,
        "turns_per_s": round(stats.turns / elapsed, 1),
        "latency": latency,
        "errors": sum(stats.errors.values()),
        "errors_by_kind": dict(stats.errors),
        "wrong_replies": stats.wrong_replies,
        "replay_mismatches": stats.replay_mismatches,
        **{name: figures.get(name, 0) for name in sorted(figures)},
        "server_processes": processes,
        "server_rss_mib": round(sum(p["rss_mib"] for p in processes), 1),
        "client_cpu_s": round(client_cpu, 2),
        "server_root": str(options.server_root),
        "server_log_error_lines": sum(
            1 for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line
        ),
        "server_log": str(server.log),
        "samples": stats.samples,
        "problems": checked["problems"],
    }
    failures = [name for name in FAILING if result.get(name, 0)]
    if stats.turns == 0:
        failures.append("no turn was acknowledged")
    result["failures"] = failures
    result["passed"] = not failures
    return result


# ---------------------------------------------------------------------------- output


def write_text(path: Path, text: str) -> None:
    path.write_text(text)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def show(result: dict[str, Any]) -> None:
    n = result["processes"]
    print(
        f"\n== {n} process{'es' if n > 1 else ''}: {result['users']} users, "
        f"{result['seconds']:.1f} s, echo typing {result['echo_delay_ms']} ms a word =="
    )
    print(f"{'kind':26} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    kinds = sorted(set(result["latency"]) | set(result["errors_by_kind"]))
    for kind in kinds:
        row = result["latency"].get(kind, {"count": 0, "p50_ms": math.nan, "p99_ms": math.nan})
        errors = result["errors_by_kind"].get(kind, 0)
        print(
            f"{kind:26} {row['count']:7d} {row['count'] / result['seconds']:8.1f} "
            f"{row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {errors:7d}"
        )
    print(
        f"{'all requests':26} {result['requests']:7d} {result['requests_per_s']:8.1f} "
        f"{'':8} {'':8} {result['errors']:7d}"
    )
    print(
        f"turns acknowledged: {result['turns']} ({result['turns_per_s']:.1f}/s) in "
        f"{result.get('sessions', 0)} sessions; messages acknowledged "
        f"{result.get('messages_acknowledged', 0)}, stored {result.get('messages_stored', 0)}"
    )
    print(
        f"storage: lost {result.get('lost', 0)}, duplicated {result.get('duplicated', 0)}, "
        f"unacknowledged {result.get('unacknowledged', 0)}, "
        f"order errors {result.get('order_errors', 0)}, "
        f"history mismatches {result.get('history_mismatches', 0)}, "
        f"wrong replies {result['wrong_replies']}, "
        f"replay mismatches {result['replay_mismatches']}"
    )
    print(
        f"events: {result.get('subscriptions', 0)} subscriptions expected "
        f"{result.get('events_expected', 0)}, received {result.get('events_received', 0)}; "
        f"missed {result.get('missed_events', 0)} "
        f"(by {result.get('subscribers_missing_events', 0)} subscribers, "
        f"{result.get('subscribers_without_any_event', 0)} of them saw none), "
        f"duplicated {result.get('duplicate_events', 0)}, "
        f"unknown {result.get('unknown_events', 0)}, "
        f"out of order at {result.get('subscribers_out_of_order', 0)} subscribers (not checked)"
    )
    cpu = ", ".join(
        f"{p['role']} {p['cpu_s']:.1f} s/{p['rss_mib']:.0f} MiB" for p in result["server_processes"]
    )
    print(
        f"server: RSS {result['server_rss_mib']:.0f} MiB; per process, CPU during the load "
        f"and RSS: {cpu}; this client's CPU: {result['client_cpu_s']:.1f} s"
    )
    print(f"server log: {result['server_log_error_lines']} error lines ({result['server_log']})")
    for line in result["samples"][:8] + result["problems"][:8]:
        print(f"  ! {line}")
    verdict = "PASS" if result["passed"] else "FAIL: " + ", ".join(result["failures"])
    print(f"result: {verdict}")


def compare(results: Sequence[dict[str, Any]]) -> None:
    print(
        f"\n{'processes':>9} {'req/s':>8} {'turns/s':>8} {'errors':>7} {'lost':>5} "
        f"{'dup':>5} {'missed':>7} {'RSS MiB':>8}  result"
    )
    for r in results:
        print(
            f"{r['processes']:9d} {r['requests_per_s']:8.1f} {r['turns_per_s']:8.1f} "
            f"{r['errors']:7d} {r.get('lost', 0):5d} {r.get('duplicated', 0):5d} "
            f"{r.get('missed_events', 0):7d} {r['server_rss_mib']:8.0f}  "
            f"{'PASS' if r['passed'] else 'FAIL'}"
        )


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--processes", default="1,2", help="comma-separated worker counts (default 1,2)"
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds for late events")
    parser.add_argument("--echo-delay-ms", type=int, default=5, help="echo typing per word")
    parser.add_argument("--turns-per-session", type=int, default=6)
    parser.add_argument(
        "--subscribe-grace", type=float, default=0.5, help="seconds from subscribe to 1st send"
    )
    parser.add_argument("--replay-ratio", type=float, default=0.1)
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between actions")
    parser.add_argument(
        "--keep-alive", action="store_true", help="reuse HTTP connections (default: one a request)"
    )
    parser.add_argument("--connections-per-user", type=int, default=2, help="with --keep-alive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--server-root",
        type=Path,
        default=ROOT,
        help="run the server from this source tree (e.g. `git archive` of another commit)",
    )
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="FILE", help="write JSON (to stdout: no table)"
    )
    options = parser.parse_args(argv)
    options.server_root = options.server_root.resolve()
    options.process_counts = [int(part) for part in options.processes.split(",") if part.strip()]
    if not options.process_counts or min(options.process_counts) < 1 or options.users < 1:
        parser.error("--processes and --users must be positive")
    return options


async def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    logs = Path(tempfile.mkdtemp(prefix="scale_load_"))
    log(f"server logs in {logs}")
    results = []
    for workers in options.process_counts:
        result = await run_once(options, workers, logs)
        results.append(result)
        if options.json != "-":
            show(result)
    if options.json != "-":
        compare(results)
    if options.json is not None:
        text = json.dumps(results, indent=2)
        if options.json == "-":
            print(text)
        else:
            write_text(Path(options.json), text + "\n")
    return 0 if all(result["passed"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
