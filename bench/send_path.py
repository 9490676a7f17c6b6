"""The send path, side by side: what the gateway adds to a model reply, against LiteLLM.

    .venv/bin/python bench/send_path.py [--json out.json] [--smoke]

One loopback Chat Completions upstream (bench/loopback_upstream.py, its own process,
answering after --upstream-ms, 20 ms by default) serves every target:

- direct:          the client calls the upstream itself (the floor: client and loopback);
- litellm:         the LiteLLM proxy from PyPI, one worker, routed to the upstream
                   (installed on first use into ~/.cache/chat-gateway-bench/litellm-venv,
                   never into the project's venv; reported as unavailable if it cannot be
                   installed or started);
- gateway-sqlite:  `chat-gateway serve`, WORKERS=1, on a scratch SQLite file;
- gateway-pg:      the same on a scratch PostgreSQL database;
- handwritten-pg:  bench/handwritten_rest.py's send route (whole replies only): the same
                   two statements and upstream call written by hand on Starlette, asyncpg
                   and aiohttp, on gateway-pg's database and sessions: the stack's floor.

Each is measured with 1 and 32 clients (one chat session per client: a session's turns
queue), whole and streamed replies (SSE; `Accept: text/event-stream` on the gateway,
`stream: true` elsewhere), in alternating rounds (every target once per round, medians
reported): overhead per reply = the client's end-to-end time minus the upstream's own
time for that reply (each question ends with a marker the upstream records its time
under), p50/p99; replies/s; the server's CPU time per reply (its process tree, from
/proc). The gateway stores every message and log entry as usual.

Round trips per turn: a second gateway on its own scratch PostgreSQL database talks to
the database through bench/pg_wire.py, which counts the client's round trips (Query,
Sync, Flush). Measured at 1 client after warm-up, whole and streamed separately, plus one
REST history page and one GraphQL sessions page; the event listener's own connection
(LISTEN, its keep-alive pings) is left out. The timings above come from the gateway
without the proxy (a Python relay adds its own time to every round trip).

REST reads: a plain user with a session of 100,000 messages (bulk-inserted in SQL) and
40 sessions; the history page (first and deepest) and the sessions list, on the gateway
and on bench/handwritten_rest.py (Starlette + asyncpg doing the same statements, one
uvicorn worker; its `handwritten-offset` variant reads pages with OFFSET, as the gateway
once did), from 16 connections: req/s and the ratio gateway/hand-written (against the
variant whose SQL the gateway's history page uses, as the round-trip log shows).

RSS: each gateway process when idle, after 1,000 and after 10,000 replies.

--smoke runs a few replies per mode, no LiteLLM, a 200-message session, and prints the
JSON (it is a test of the suite: tests/bench/test_send_path_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_bench import (  # noqa: E402
    ROOT,
    Gateway,
    Scenario,
    cli,
    free_port,
    rss_mib,
    running_gateway,
)
from api_bench import run as load_run  # noqa: E402
from pg_wire import PgWireProxy  # noqa: E402

from db import scratch  # noqa: E402

KEY_ENV = "BENCH_UPSTREAM_KEY"
MODEL = "bench-model"
CACHE = Path(os.environ.get("CHAT_GATEWAY_BENCH_CACHE", "~/.cache/chat-gateway-bench")).expanduser()
LITELLM_VENV = CACHE / "litellm-venv"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REQUEST_TIMEOUT = [120.0]  # the profile's, set by main()
SESSIONS_QUERY = (
    "query($n: Int) { sessions(first: $n) { totalCount "
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
    "edges { cursor node { id createdAt messageCount } } } }"
)


@dataclass(frozen=True)
class Profile:
    replies_one: int  # replies per round at 1 client
    replies_many: int  # per round at 32 clients
    warmup: int  # replies per client before each measured batch
    rounds: int
    rss_checkpoints: tuple[int, int]
    round_trip_turns: int
    history_messages: int
    reader_sessions: int
    rest_seconds: float
    rest_warmup_seconds: float
    rest_concurrency: int
    request_timeout: float = 120.0  # seconds a client waits for one reply
    many_clients: int = 32


FULL = Profile(
    replies_one=200,
    replies_many=640,
    warmup=5,
    rounds=3,
    rss_checkpoints=(1_000, 10_000),
    round_trip_turns=40,
    history_messages=100_000,
    reader_sessions=40,
    rest_seconds=5.0,
    rest_warmup_seconds=1.0,
    rest_concurrency=16,
)
SMOKE = Profile(
    replies_one=4,
    replies_many=32,
    warmup=1,
    rounds=1,
    rss_checkpoints=(40, 80),
    round_trip_turns=4,
    history_messages=200,
    reader_sessions=3,
    rest_seconds=0.3,
    rest_warmup_seconds=0.1,
    rest_concurrency=4,
    request_timeout=20.0,
)


# Processes -------------------------------------------------------------------------------


def start_process(
    command: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopping it reaches its children
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def tree_rss_mib(pid: int) -> float:
    return sum(rss_mib(member) for member in process_tree(pid))


async def wait_http(url: str, *, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"did not answer {url} within {seconds:.0f} s")


# Targets ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    kind: str  # direct, litellm or gateway
    base: str
    pid: int | None
    key: str = ""
    user_id: str = ""
    sessions: list[str] = field(default_factory=list)
    replies: int = 0  # answered so far (warm-ups included)
    http: aiohttp.ClientSession | None = None

    def request(self, slot: int, marker: str, stream: bool) -> tuple[str, dict[str, Any], dict]:
        question = f"question {marker}"
        if self.kind in ("gateway", "handwritten"):
            headers = {"Authorization": f"Bearer {self.key}"}
            if stream:
                headers["Accept"] = "text/event-stream"
            url = f"{self.base}/api/v1/sessions/{self.sessions[slot]}/messages"
            return url, {"user_id": self.user_id, "message": question}, headers
        body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
        if stream:
            body["stream"] = True
        key = self.key or "sk-bench"
        return f"{self.base}/v1/chat/completions", body, {"Authorization": f"Bearer {key}"}


class Upstream:
    """The upstream process and the times it recorded."""

    def __init__(self, base: str, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.process = process

    async def took(self, http: aiohttp.ClientSession, markers: list[str]) -> dict[str, float]:
        times: dict[str, float] = {}
        for start in range(0, len(markers), 2000):
            async with http.post(f"{self.base}/_took", json=markers[start : start + 2000]) as r:
                times.update(await r.json())
        return times


async def send_batch(
    target: Target, clients: int, stream: bool, count: int
) -> tuple[list[tuple[str, float]], int, float]:
    """`count` replies from `clients` concurrent clients: (marker, seconds) of each
    good one, the number of failures, and the wall time."""
    assert target.http is not None
    http = target.http
    done: list[tuple[str, float]] = []
    errors = 0
    left = count

    async def client(slot: int) -> None:
        nonlocal left, errors
        while left > 0:
            left -= 1
            marker = uuid.uuid4().hex
            url, body, headers = target.request(slot, marker, stream)
            started = time.perf_counter()
            try:
                async with http.post(url, json=body, headers=headers) as response:
                    payload = await response.read()
                elapsed = time.perf_counter() - started
                bad = response.status != 200 or (target.kind == "gateway" and b'"error"' in payload)
            except (TimeoutError, aiohttp.ClientError):
                bad, payload = True, b""
            target.replies += 1
            if bad:
                errors += 1
                if errors <= 3:
                    print(f"  {target.name}: failed reply: {payload[:200]!r}", file=sys.stderr)
            else:
                done.append((marker, elapsed))

    began = time.perf_counter()
    await asyncio.gather(*(client(slot) for slot in range(clients)))
    return done, errors, time.perf_counter() - began


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * share) - 1))]


async def measure(
    target: Target, upstream: Upstream, clients: int, stream: bool, count: int, warmup: int
) -> dict[str, Any]:
    assert target.http is not None
    await send_batch(target, clients, stream, warmup * clients)
    cpu_before = cpu_seconds(target.pid) if target.pid else None
    done, errors, wall = await send_batch(target, clients, stream, count)
    cpu_after = cpu_seconds(target.pid) if target.pid else None
    took = await upstream.took(target.http, [marker for marker, _ in done])
    overheads = sorted(elapsed - took[marker] for marker, elapsed in done if marker in took)
    result: dict[str, Any] = {
        "replies": len(done),
        "errors": errors,
        "overhead_p50_ms": statistics.median(overheads) * 1000 if overheads else None,
        "overhead_p99_ms": percentile(overheads, 0.99) * 1000 if overheads else None,
        "replies_per_s": len(done) / wall if wall else None,
        "cpu_ms_per_reply": None,
    }
    if cpu_before is not None and cpu_after is not None and done:
        result["cpu_ms_per_reply"] = (cpu_after - cpu_before) * 1000 / (len(done) + errors)
    return result


def new_client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT[0]),
    )


# Setting the targets up ------------------------------------------------------------------


async def graphql(
    http: aiohttp.ClientSession, base: str, key: str, query: str, **variables: object
) -> dict[str, Any]:
    async with http.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        answer = await response.json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


async def new_session(
    http: aiohttp.ClientSession, base: str, key: str, user_id: str, config_id: str | None = None
) -> str:
    body = {"user_id": user_id, **({"model_config_id": config_id} if config_id else {})}
    async with http.post(
        f"{base}/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        answer = await response.json()
    assert response.status == 200, answer
    session_id: str = answer["data"]["session_id"]
    return session_id


async def gateway_target(name: str, gateway: Gateway, upstream_port: int, sessions: int) -> Target:
    key, user_id = gateway.account["api_key"], gateway.account["user_id"]
    target = Target(name, "gateway", gateway.base, gateway.pid, key=key, user_id=user_id)
    target.http = new_client()
    created = await graphql(
        target.http,
        gateway.base,
        key,
        'mutation($u: String!) { createModelConfig(input: {provider: "openai", '
        f'modelName: "{MODEL}", modelVersion: "1", baseUrl: $u, '
        f'apiKeyEnv: "{KEY_ENV}", parameters: {{max_history_messages: 2}}}}) {{ id }} }}',
        u=f"http://127.0.0.1:{upstream_port}/v1",
    )
    config_id = created["createModelConfig"]["id"]
    target.sessions = [
        await new_session(target.http, gateway.base, key, user_id, config_id)
        for _ in range(sessions)
    ]
    return target


def gateway_env() -> dict[str, str]:
    return {
        KEY_ENV: "bench-key",
        "WORKERS": "1",
        "MODEL_PROVIDERS": "echo,openai",
        # api_bench.running_gateway waits 10 s for the process to end after SIGTERM.
        "SHUTDOWN_GRACE_SECONDS": "3",
    }


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@asynccontextmanager
async def scratch_postgres(server: str) -> AsyncIterator[str]:
    url = await scratch.create_postgres(server, prefix="cgw_bench")
    try:
        yield url
    finally:
        await scratch.drop_postgres(server, url)


@asynccontextmanager
async def upstream_process(delay_ms: float, logs: Path) -> AsyncIterator[Upstream]:
    port = free_port()
    process = start_process(
        [sys.executable, str(HERE / "loopback_upstream.py"), str(port), str(delay_ms)],
        env=dict(os.environ),
        log=logs / "upstream.log",
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", process=process, seconds=30)
        yield Upstream(f"http://127.0.0.1:{port}", process)
    finally:
        stop_process(process)


def ensure_litellm(logs: Path) -> Path:
    """The `litellm` command of the cache venv, installed there on first use."""
    command = LITELLM_VENV / "bin" / "litellm"
    if command.exists():
        return command
    print(f"installing litellm[proxy] into {LITELLM_VENV} (first run only)...", flush=True)
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    with (logs / "litellm-install.log").open("w") as log:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        subprocess.run(
            [
                str(LITELLM_VENV / "bin" / "pip"),
                "install",
                "--disable-pip-version-check",
                "litellm[proxy]",
            ],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=1800,
        )
    if not command.exists():
        raise RuntimeError("pip install litellm[proxy] gave no `litellm` command")
    return command


@asynccontextmanager
async def litellm_process(upstream_port: int, logs: Path) -> AsyncIterator[Target]:
    command = ensure_litellm(logs)
    # A master key (checked in memory, no database): it refuses to start without one.
    master_key = f"sk-{uuid.uuid4().hex}"
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "bench-key",
                },
            }
        ],
        "litellm_settings": {
            "telemetry": False,
            "num_retries": 0,
            "request_timeout": 60,
            "set_verbose": False,
            "json_logs": False,
        },
        "general_settings": {"master_key": master_key, "disable_spend_logs": True},
    }
    config_path = logs / "litellm.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "LITELLM_", "OPENAI_", "REDIS_"))
    }
    env.update(
        {
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NO_DOCS": "True",
            "PATH": f"{LITELLM_VENV / 'bin'}:{env.get('PATH', '')}",
        }
    )
    env.pop("VIRTUAL_ENV", None)
    process = start_process(
        [
            str(command),
            *("--config", str(config_path), "--host", "127.0.0.1"),
            *("--port", str(port), "--num_workers", "1"),
        ],
        env=env,
        log=logs / "litellm.log",
        cwd=logs,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/health/liveliness", process=process, seconds=180)
        target = Target("litellm", "litellm", base, process.pid, key=master_key)
        target.http = new_client()
        yield target
    finally:
        stop_process(process)


@asynccontextmanager
async def handwritten_process(dsn: str, logs: Path) -> AsyncIterator[tuple[str, int]]:
    """bench/handwritten_rest.py on `dsn`: its base URL and process id."""
    port = free_port()
    process = start_process(
        [
            *(sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "handwritten_rest:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env={**os.environ, "HANDWRITTEN_DSN": dsn},
        log=logs / "handwritten.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/healthz", process=process, seconds=60)
        yield base, process.pid
    finally:
        stop_process(process)


# Phases ----------------------------------------------------------------------------------


MODES = [(stream, clients) for clients in (1, 32) for stream in (False, True)]


def mode_key(stream: bool, clients: int) -> str:
    return f"{'streamed' if stream else 'whole'}-{clients}"


def median_of(rounds: list[dict[str, Any]], name: str) -> float | None:
    values = [r[name] for r in rounds if r.get(name) is not None]
    return statistics.median(values) if values else None


async def send_rounds(
    targets: list[Target], upstream: Upstream, profile: Profile
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    for stream, clients in MODES:
        clients = clients if clients == 1 else profile.many_clients
        count = profile.replies_one if clients == 1 else profile.replies_many
        key = mode_key(stream, clients)
        print(f"  {key}: ", end="", flush=True)
        # The hand-written route answers whole replies only.
        measured_here = [t for t in targets if not (stream and t.kind == "handwritten")]
        per_round: dict[str, list[dict[str, Any]]] = {t.name: [] for t in measured_here}
        for number in range(profile.rounds):
            for target in measured_here:
                measured = await measure(target, upstream, clients, stream, count, profile.warmup)
                per_round[target.name].append(measured)
            print(f"round {number + 1} ", end="", flush=True)
        print()
        for target in measured_here:
            rounds = per_round[target.name]
            results[target.name][key] = {
                "rounds": rounds,
                **{
                    name: median_of(rounds, name)
                    for name in (
                        "overhead_p50_ms",
                        "overhead_p99_ms",
                        "replies_per_s",
                        "cpu_ms_per_reply",
                    )
                },
                "errors": sum(r["errors"] for r in rounds),
            }
    return results


async def rss_phase(target: Target, upstream: Upstream, profile: Profile) -> dict[str, Any]:
    """Idle RSS, then after each checkpoint's number of replies (32 clients, whole and
    streamed batches in turn)."""
    assert target.pid is not None
    found: dict[str, Any] = {"idle_mib": rss_mib(target.pid)}
    stream = False
    for checkpoint in profile.rss_checkpoints:
        while target.replies < checkpoint:
            batch = min(500, checkpoint - target.replies)
            await send_batch(target, profile.many_clients, stream, batch)
            stream = not stream
        await asyncio.sleep(0.5)
        found[f"after_{checkpoint}_mib"] = rss_mib(target.pid)
    return found


async def round_trip_phase(target: Target, proxy: PgWireProxy, profile: Profile) -> dict[str, Any]:
    """Round trips per turn at 1 client, after warm-up; the listener connection left out."""
    assert target.http is not None
    http, n = target.http, profile.round_trip_turns
    headers = {"Authorization": f"Bearer {target.key}"}
    history = f"{target.base}/api/v1/sessions/{target.sessions[0]}/messages?page_size=20&page_num=1"

    async def history_page() -> None:
        async with http.get(history, headers=headers) as response:
            assert response.status == 200, await response.text()

    async def sessions_page() -> None:
        await graphql(http, target.base, target.key, SESSIONS_QUERY, n=20)

    async def turns(stream: bool, count: int) -> None:
        _, errors, _ = await send_batch(target, 1, stream, count)
        assert errors == 0, f"{errors} failed turns"

    def counted(spent: Any) -> int:
        listeners = proxy.listener_connections()
        return sum(c for number, c in spent.per_connection.items() if number not in listeners)

    async def per_request(work: Any, count: int) -> tuple[float, list[str]]:
        await proxy.quiet()
        before = proxy.snapshot()
        await work(count)
        await proxy.quiet()
        spent = proxy.snapshot() - before
        # One more, alone, for its statement list.
        before = proxy.snapshot()
        await work(1)
        await proxy.quiet()
        one = proxy.snapshot() - before
        listeners = proxy.listener_connections()
        statements = [
            "; ".join(trip.statements) or f"({trip.kind})"
            for trip in one.round_trip_log
            if trip.connection not in listeners
        ]
        return counted(spent) / count, statements

    # Warm up: pool connections opened, statements prepared, the key's last_used_at written.
    for _ in range(3):
        await turns(False, 1)
        await turns(True, 1)
        await history_page()
        await sessions_page()

    async def repeat(action: Any, count: int) -> None:
        for _ in range(count):
            await action()

    whole, whole_sql = await per_request(lambda c: turns(False, c), n)
    streamed, streamed_sql = await per_request(lambda c: turns(True, c), n)
    page, page_sql = await per_request(lambda c: repeat(history_page, c), n)
    listing, listing_sql = await per_request(lambda c: repeat(sessions_page, c), n)
    return {
        "turns_measured": n,
        "whole_turn": whole,
        "streamed_turn": streamed,
        "history_page": page,
        "sessions_list_graphql": listing,
        "statements": {
            "whole_turn": whole_sql,
            "streamed_turn": streamed_sql,
            "history_page": page_sql,
            "sessions_list_graphql": listing_sql,
        },
        "connections_opened": len(proxy.connections),
    }


async def seed_reader(
    gateway: Gateway, url: str, profile: Profile, logs: Path
) -> tuple[dict[str, str], str]:
    """A plain user with `reader_sessions` sessions, the first holding
    `history_messages` messages (inserted in SQL, numbered 1..N as the gateway does)."""
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "warning",
        "BOOTSTRAP_ADMIN": "false",
    }
    reader = json.loads(cli(["user", "create", "reader"], environment))
    async with aiohttp.ClientSession() as http:
        sessions = [
            await new_session(http, gateway.base, reader["api_key"], reader["user_id"])
            for _ in range(profile.reader_sessions)
        ]
    big = sessions[0]
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        column = await connection.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'messages' AND column_name = 'metadata'"
        )
        cast = "jsonb" if column == "jsonb" else ("json" if column == "json" else "text")
        await connection.execute(
            'INSERT INTO "messages" ("id", "session_id", "seq", "type", "content", "metadata", '
            '"created_at") '
            "SELECT gen_random_uuid(), $1::uuid, g, "
            "CASE WHEN g % 2 = 1 THEN 'user' ELSE 'ai' END, "
            "'message number ' || g || ' ' || repeat('lorem ', 20), "
            f"CASE WHEN g % 2 = 1 THEN ('{{\"turn\": ' || g || '}}')::{cast} END, "
            "now() - make_interval(secs => ($2 - g) * 0.001) "
            "FROM generate_series(1, $2::int) g",
            big,
            profile.history_messages,
        )
        await connection.execute(
            'UPDATE "chat_sessions" SET "last_seq" = $2 WHERE "id" = $1::uuid',
            big,
            profile.history_messages,
        )
        await connection.execute('ANALYZE "messages"')
        await connection.execute('ANALYZE "chat_sessions"')
    finally:
        await connection.close()
    return reader, big


async def rest_phase(
    gateway: Gateway,
    url: str,
    page_sql: list[str],
    profile: Profile,
    logs: Path,
) -> dict[str, Any]:
    reader, big = await seed_reader(gateway, url, profile, logs)
    key = reader["api_key"]
    deepest = math.ceil(profile.history_messages / 20)
    history = f"/api/v1/sessions/{big}/messages?page_size=20&page_num="
    gateway_uses_offset = any("OFFSET" in line.upper() for line in page_sql)
    async with handwritten_process(asyncpg_dsn(url), logs) as (hand, _):
        # The same answers (a check that the comparison is fair).
        same: dict[str, bool] = {}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            for page in (1, deepest):
                answers = []
                for base, suffix in ((gateway.base, ""), (hand, ""), (hand, "&by=offset")):
                    async with http.get(f"{base}{history}{page}{suffix}") as response:
                        answers.append(await response.json())
                same[f"history_page_{page}"] = answers[0] == answers[1] == answers[2]
            body = {"query": SESSIONS_QUERY, "variables": {"n": 20}}
            async with http.post(f"{gateway.base}/graphql", json=body) as response:
                from_gateway = await response.json()
            async with http.get(f"{hand}/bench/sessions?first=20") as response:
                from_hand = await response.json()
            same["sessions_list"] = from_gateway == from_hand
        scenarios = [
            ("gateway", "history first page", gateway.base, "GET", f"{history}1", None),
            ("gateway", "history deepest page", gateway.base, "GET", f"{history}{deepest}", None),
            ("gateway", "sessions list (GraphQL)", gateway.base, "POST", "/graphql", body),
            ("handwritten", "history first page", hand, "GET", f"{history}1", None),
            ("handwritten", "history deepest page", hand, "GET", f"{history}{deepest}", None),
            ("handwritten", "sessions list", hand, "GET", "/bench/sessions?first=20", None),
            (
                "handwritten-offset",
                "history first page",
                hand,
                "GET",
                f"{history}1&by=offset",
                None,
            ),
            (
                "handwritten-offset",
                "history deepest page",
                hand,
                "GET",
                f"{history}{deepest}&by=offset",
                None,
            ),
        ]
        rounds: dict[tuple[str, str], list[dict[str, float]]] = {}
        for number in range(profile.rounds):
            for server, name, base, method, path, payload in scenarios:
                scenario = Scenario(name, method, path, payload)
                if number == 0:
                    await load_run(
                        base, key, scenario, profile.rest_warmup_seconds, profile.rest_concurrency
                    )
                result = await load_run(
                    base, key, scenario, profile.rest_seconds, profile.rest_concurrency
                )
                rounds.setdefault((server, name), []).append(result)
    table: dict[str, dict[str, Any]] = {}
    for (server, name), results in rounds.items():
        table.setdefault(server, {})[name] = {
            "rps": statistics.median(r["rps"] for r in results),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "errors": sum(int(r["errors"]) for r in results),
            "rounds": results,
        }
    reference = "handwritten-offset" if gateway_uses_offset else "handwritten"
    ratios = {
        f"{name} gateway/{reference}": table["gateway"][name]["rps"] / table[reference][name]["rps"]
        for name in ("history first page", "history deepest page")
    }
    ratios["sessions list gateway/handwritten"] = (
        table["gateway"]["sessions list (GraphQL)"]["rps"]
        / table["handwritten"]["sessions list"]["rps"]
    )
    ratios["gateway deepest/first (req/s)"] = (
        table["gateway"]["history deepest page"]["rps"]
        / table["gateway"]["history first page"]["rps"]
    )
    return {
        "messages_in_session": profile.history_messages,
        "deepest_page_num": deepest,
        "concurrency": profile.rest_concurrency,
        "seconds_per_round": profile.rest_seconds,
        "gateway_history_sql_uses_offset": gateway_uses_offset,
        "reference": reference,
        "same_json": same,
        "results": table,
        "ratios": ratios,
    }


# Verdicts and printing -------------------------------------------------------------------


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(target: str, value: float | None, limit: str, met: bool | None) -> None:
        found.append({"target": target, "value": value, "limit": limit, "met": met})

    send = results["send"]
    for name, budget in (("gateway-sqlite", 2.0), ("gateway-pg", 3.0)):
        for reply in ("whole", "streamed"):
            row = send.get(name, {}).get(f"{reply}-1", {})
            p50, p99 = row.get("overhead_p50_ms"), row.get("overhead_p99_ms")
            add(
                f"{name} {reply} 1 client overhead p50 (ms)",
                p50,
                f"<= {budget}",
                None if p50 is None else p50 <= budget,
            )
            add(
                f"{name} {reply} 1 client overhead p99 / p50",
                None if not p50 or p99 is None else p99 / p50,
                "<= 2",
                None if not p50 or p99 is None else p99 <= 2 * p50,
            )
    many = results["config"]["many_clients"]
    for name in ("gateway-sqlite", "gateway-pg"):
        for reply in ("whole", "streamed"):
            mine = send.get(name, {}).get(f"{reply}-{many}", {}).get("replies_per_s")
            theirs = send.get("litellm", {}).get(f"{reply}-{many}", {}).get("replies_per_s")
            ratio = mine / theirs if mine and theirs else None
            add(
                f"{name} {reply} {many} clients replies/s vs litellm",
                ratio,
                ">= 5x",
                None if ratio is None else ratio >= 5,
            )
    rest = results.get("rest")
    if rest:
        ratio = rest["ratios"][f"history first page gateway/{rest['reference']}"]
        add("REST history page req/s vs hand-written", ratio, ">= 0.8x", ratio >= 0.8)
        slower = 1 / rest["ratios"]["gateway deepest/first (req/s)"]
        add("REST deepest page vs first page (time)", slower, "<= 1.2x", slower <= 1.2)
    for name, rss in results.get("rss", {}).items():
        if not name.startswith("gateway"):
            continue
        add(f"{name} idle RSS (MiB)", rss["idle_mib"], "< 120", rss["idle_mib"] < 120)
        low, high = results["config"]["rss_checkpoints"]
        growth = rss[f"after_{high}_mib"] / rss[f"after_{low}_mib"]
        add(
            f"{name} RSS after {high} / after {low} replies",
            growth,
            "<= 1.10",
            growth <= 1.10,
        )
    return found


def fmt(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_table(results: dict[str, Any]) -> None:
    config = results["config"]
    print()
    print(
        f"send path: upstream answers after {config['upstream_ms']:.0f} ms; "
        f"{config['replies_one']} replies per round at 1 client, {config['replies_many']} at "
        f"{config['many_clients']}; {config['rounds']} alternating rounds, medians"
    )
    litellm = results["litellm"]
    if not litellm["available"]:
        print(f"litellm: unavailable ({litellm['reason']})")
    header = (
        f"{'target':16} {'reply':9} {'clients':>7} {'overhead p50':>12} {'p99 ms':>8} "
        f"{'replies/s':>10} {'CPU ms/reply':>12} {'errors':>6}"
    )
    print(header)
    for stream, clients in MODES:
        clients = clients if clients == 1 else config["many_clients"]
        for name, rows in results["send"].items():
            row = rows.get(mode_key(stream, clients))
            if row is None:
                continue
            print(
                f"{name:16} {'streamed' if stream else 'whole':9} {clients:7d} "
                f"{fmt(row['overhead_p50_ms'], 12)} {fmt(row['overhead_p99_ms'], 8)} "
                f"{fmt(row['replies_per_s'], 10, 0)} {fmt(row['cpu_ms_per_reply'], 12)} "
                f"{row['errors']:6d}"
            )
    trips = results.get("round_trips")
    if trips:
        print()
        print(
            f"PostgreSQL round trips (bench/pg_wire.py, 1 client, {trips['turns_measured']} each):"
            f" whole turn {trips['whole_turn']:.2f}, streamed turn {trips['streamed_turn']:.2f},"
            f" REST history page {trips['history_page']:.2f}, GraphQL sessions page "
            f"{trips['sessions_list_graphql']:.2f}"
        )
        for name in ("whole_turn", "streamed_turn"):
            print(f"  statements of one {name.replace('_', ' ')}:")
            for number, line in enumerate(trips["statements"][name], 1):
                print(f"    {number:2d}. {line[:150]}")
    rest = results.get("rest")
    if rest:
        print()
        print(
            f"REST reads (PostgreSQL; a session of {rest['messages_in_session']:,} messages, "
            f"deepest page {rest['deepest_page_num']}; {rest['concurrency']} connections, "
            f"{rest['seconds_per_round']:g} s per round; same JSON: {rest['same_json']})"
        )
        print(f"{'server':18} {'scenario':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'err':>5}")
        for server, rows in rest["results"].items():
            for name, row in rows.items():
                print(
                    f"{server:18} {name:26} {row['rps']:8.0f} {row['p50_ms']:8.2f} "
                    f"{row['p99_ms']:8.2f} {row['errors']:5d}"
                )
        for name, ratio in rest["ratios"].items():
            print(f"  {name}: {ratio:.2f}")
    if results.get("rss"):
        print()
        low, high = config["rss_checkpoints"]
        print(f"{'RSS MiB':16} {'idle':>8} {f'after {low}':>12} {f'after {high}':>12}")
        for name, rss in results["rss"].items():
            print(
                f"{name:16} {rss['idle_mib']:8.1f} {fmt(rss.get(f'after_{low}_mib'), 12, 1)} "
                f"{fmt(rss.get(f'after_{high}_mib'), 12, 1)}"
            )
    print()
    print("targets:")
    for verdict in results["verdicts"]:
        state = {True: "met", False: "NOT MET", None: "n/a"}[verdict["met"]]
        print(f"  {verdict['target']:55} {fmt(verdict['value'], 8)} {verdict['limit']:>8}  {state}")


# The run ---------------------------------------------------------------------------------


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a short run (CI)")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--upstream-ms", type=float, default=20)
    parser.add_argument(
        "--postgres-server",
        default=os.environ.get(
            "TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server where scratch databases may be created",
    )
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; smoke 1)")
    options = parser.parse_args()
    profile = SMOKE if options.smoke else FULL
    if options.rounds:
        profile = Profile(**{**profile.__dict__, "rounds": options.rounds})
    REQUEST_TIMEOUT[0] = profile.request_timeout
    logs = Path(tempfile.mkdtemp(prefix="send-path-"))
    # SIGTERM (a timeout, CI) cancels the run, so every process it started is stopped.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results: dict[str, Any] = {
        "config": {
            "smoke": options.smoke,
            "upstream_ms": options.upstream_ms,
            "replies_one": profile.replies_one,
            "replies_many": profile.replies_many,
            "many_clients": profile.many_clients,
            "rounds": profile.rounds,
            "rss_checkpoints": list(profile.rss_checkpoints),
            "cpus": os.cpu_count(),
            "logs": str(logs),
        },
        "litellm": {"available": False, "reason": "not asked (--smoke or --no-litellm)"},
    }
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        upstream = await stack.enter_async_context(upstream_process(options.upstream_ms, logs))
        upstream_port = int(upstream.base.rsplit(":", 1)[1])
        direct = Target("direct", "direct", upstream.base, None)
        direct.http = new_client()
        targets = [direct]
        if not (options.smoke or options.no_litellm):
            print("starting litellm...", flush=True)
            try:
                litellm = await stack.enter_async_context(litellm_process(upstream_port, logs))
                # A first reply proves the route works before any timing.
                _, errors, _ = await send_batch(litellm, 1, False, 1)
                if errors:
                    raise RuntimeError(f"its first reply failed; see {logs / 'litellm.log'}")
                results["litellm"] = {"available": True, "reason": "", "pid": litellm.pid}
                targets.append(litellm)
            except Exception as exc:
                log = logs / "litellm.log"
                tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                results["litellm"] = {"available": False, "reason": f"{exc}; {tail}".strip()}
                print(f"litellm unavailable: {exc}", flush=True)
        print("starting gateways...", flush=True)
        sqlite_gateway = await stack.enter_async_context(
            running_gateway(None, admin=True, env=gateway_env())
        )
        pg_url = await stack.enter_async_context(scratch_postgres(options.postgres_server))
        pg_gateway = await stack.enter_async_context(
            running_gateway(pg_url, admin=True, env=gateway_env())
        )
        proxy = PgWireProxy("127.0.0.1", urlsplit(pg_url).port or 5432, record=True)
        proxy.start_in_thread()
        stack.callback(proxy.stop_thread)
        counted_url = await stack.enter_async_context(scratch_postgres(options.postgres_server))
        counted_gateway = await stack.enter_async_context(
            running_gateway(with_port(counted_url, proxy.port), admin=True, env=gateway_env())
        )
        many = profile.many_clients
        gateways = [
            await gateway_target("gateway-sqlite", sqlite_gateway, upstream_port, many),
            await gateway_target("gateway-pg", pg_gateway, upstream_port, many),
        ]
        counted = await gateway_target("gateway-pg-counted", counted_gateway, upstream_port, 1)
        targets += gateways
        hand_base, hand_pid = await stack.enter_async_context(
            handwritten_process(asyncpg_dsn(pg_url), logs)
        )
        pg_target = gateways[1]
        # Its sessions, key and config: the two take turns on the same rows.
        handwritten = Target(
            "handwritten-pg",
            "handwritten",
            hand_base,
            hand_pid,
            key=pg_target.key,
            user_id=pg_target.user_id,
            sessions=pg_target.sessions,
            http=new_client(),
        )
        _, errors, _ = await send_batch(handwritten, 1, False, 1)
        if errors:
            raise RuntimeError(f"the hand-written send failed; see {logs / 'handwritten.log'}")
        targets.append(handwritten)
        for target in targets:
            if target.http is not None:
                stack.push_async_callback(target.http.close)
        stack.push_async_callback(counted.http.close)  # type: ignore[union-attr]

        print("round trips per turn (PostgreSQL, through bench/pg_wire.py)...", flush=True)
        results["round_trips"] = await round_trip_phase(counted, proxy, profile)

        print("RSS: idle, then 32-client replies up to each checkpoint...", flush=True)
        results["rss"] = {}
        for target in targets:
            if target.kind == "litellm" and target.pid:
                results["rss"]["litellm"] = {"idle_mib": tree_rss_mib(target.pid)}
        for target in gateways:
            results["rss"][target.name] = await rss_phase(target, upstream, profile)

        print("send path rounds...", flush=True)
        results["send"] = await send_rounds(targets, upstream, profile)

        print("REST reads...", flush=True)
        results["rest"] = await rest_phase(
            pg_gateway,
            pg_url,
            results["round_trips"]["statements"]["history_page"],
            profile,
            logs,
        )
    results["config"]["seconds"] = round(time.monotonic() - started, 1)
    results["verdicts"] = verdicts(results)
    print_table(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {options.json}")
    if options.smoke:
        print(json.dumps(results, indent=2))
    if not options.smoke:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
