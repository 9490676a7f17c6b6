"""Search latency: the full-text index (db/services/search.py) against a scan of every
message (`content ILIKE '%word%'`), at 10,000, 100,000 and 1,000,000 messages.

    .venv/bin/python bench/search_latency.py [--json out.json] [--smoke]
        [--sizes 10000,100000,1000000] [--sqlite-sizes 100000,1000000]
        [--runs 200] [--seconds 15] [--no-rest]
        [--postgres-server postgres://postgres@127.0.0.1:5432/postgres]

Data: a scratch PostgreSQL database (created on --postgres-server, migrated and given a
running gateway by `chat-gateway migrate` / `serve`, dropped at the end), grown to each
size in turn. Every 1,000 messages belong to one more user (20 sessions of 50 messages,
user and AI turns), so a user's data stays the same size while the whole grows. Each
message is 8 to 60 words drawn from an English vocabulary with a Zipf distribution
(common words, chat words, then a long tail of rarer made-up words), plus:
- "aurora", the rare word: in exactly 5 messages of each user;
- "server", the common word: in about 1 message in 10.
No other word contains either, so the scan and the index find the same messages. Rows
are written with COPY; the search index is dropped before a load and built again after
it (as CREATE INDEX builds it, in one pass), then VACUUM ANALYZE.
SQLite (--sqlite-sizes): a scratch file, migrated in process, the same data inserted
with executemany in one transaction (its triggers fill the FTS5 index).

Cases: each word searched as a user (their own sessions, which the service reads as
`visible_sql`) and as an admin (every message), 20 hits a page:
- index: `search.search()` in this process (its SQL, its rows made into messages, the
  snippets), on a Tortoise connection to the same database;
- scan: the naive statement a search without an index would run: the same ownership
  join, `content ILIKE '%word%'` (SQLite: LIKE), newest first, 20 rows and the total.
  For an admin it reads every message; for a user, the planner starts from their
  sessions and reads only their own (1,000) messages, so the gap it shows is the index
  against a scan of one user's data (the "scan reads" column says which);
- REST (PostgreSQL, unless --no-rest): GET /api/v1/search?q=... on the running gateway
  (one worker), one request at a time, over loopback.
Before timing, each case's totals are checked against the seeded counts (index, scan and
REST alike), and each statement's plan is read once (EXPLAIN): which indexes it uses and
whether it scans all of `messages`.

Measure: after 3 warm-up calls, --runs calls (200) or --seconds (15) per case and path,
whichever ends first (at least 5); the users searched for turn round-robin. Reported:
p50 and p99 latency in ms and scan p50 / index p50.

Output: a Markdown table on stdout (progress on stderr) and, with --json PATH, every
number. --smoke: 2,000 messages on each database, a few runs (a check of the chain).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from tortoise import connections
from tortoise.context import TortoiseContext

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_bench import running_gateway  # noqa: E402
from send_path import asyncpg_dsn, scratch_postgres  # noqa: E402

from db import migrate  # noqa: E402
from db.config import tortoise_config  # noqa: E402
from db.identity import Caller  # noqa: E402
from db.models import Role  # noqa: E402
from db.services import search  # noqa: E402
from db.services.users import KEY_SCHEME, PREFIX_CHARS  # noqa: E402

RARE, COMMON = "aurora", "server"
RARE_PER_USER = 5
COMMON_SHARE = 0.1
MESSAGES_PER_USER = 1000
SESSIONS_PER_USER = 20
PAGE = 20
INDEX, SCAN, REST = "index", "scan", "REST"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

_COMMON_WORDS = """
the of and to a in is it you that he was for on are with as i his they be at one have
this from or had by but not what all were we when your can said there use an each which
she do how their if will up other about out many then them these so some her would make
like him into time has look two more write go see number no way could people my than
first been call who its now find long down day did get come made may part
"""
_CHAT_WORDS = """
hello thanks please help question answer explain example code python function error
bug fix test data file table column query index database api request response token
model prompt reply message session user account key password login email meeting
project deadline budget report plan team manager client customer order invoice price
product feature release version update install configure deploy cloud network cache
memory disk performance latency speed slow fast problem issue solution idea design
document write read list sort filter search find replace translate summary draft
letter story poem recipe chicken pasta salad coffee tea breakfast lunch dinner travel
flight hotel train ticket city country weather rain sun snow holiday weekend morning
evening night tomorrow yesterday today week month year birthday party gift family
friend child school teacher student exam homework math science history music movie
book game sport football running gym health doctor medicine sleep dream garden flower
tree river mountain ocean beach car bike bus road map street house room kitchen window
door phone computer laptop screen keyboard mouse camera photo video picture color red
blue green black white large small big little good bad great better best new old young
happy sad angry tired busy easy hard simple complex important different same possible
"""


def vocabulary(size: int = 6000) -> tuple[list[str], list[float]]:
    """English words and made-up rarer ones, with Zipf weights (cumulative), most common
    first; none contains the rare or the common word."""
    words = _COMMON_WORDS.split() + _CHAT_WORDS.split()
    syllables = [a + b for a in "kmnrtvpsdbgflz" for b in "aeiou"]
    pick = random.Random(1)
    seen = set(words)
    while len(words) < size:
        word = "".join(pick.choices(syllables, k=pick.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    words = [w for w in words if RARE not in w and COMMON not in w]
    weights = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(len(words))))
    return words, weights


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# The data ------------------------------------------------------------------------------


@dataclass
class SeededUser:
    user_id: str
    key: str
    common: int  # messages holding the common word


@dataclass
class Corpus:
    """What was written so far, to know every case's answer."""

    users: list[SeededUser] = field(default_factory=list)
    messages: int = 0

    def expected(self, word: str, user: SeededUser | None) -> int:
        if word == RARE:
            return RARE_PER_USER if user is not None else RARE_PER_USER * len(self.users)
        return user.common if user is not None else sum(u.common for u in self.users)


@dataclass
class Batch:
    users: list[tuple[Any, ...]] = field(default_factory=list)
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)


def make_users(corpus: Corpus, count: int, config_id: Any, pick: random.Random) -> Batch:
    """`count` more users with their keys, sessions and messages (rows for COPY)."""
    words, weights = vocabulary()
    batch = Batch()
    for _ in range(count):
        number = len(corpus.users)
        user_id = uuid.uuid4()
        secret = KEY_SCHEME + secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        created = T0 + timedelta(hours=number)
        batch.users.append((user_id, f"bench-{number}", "user", created))
        batch.keys.append((uuid.uuid4(), user_id, digest, secret[:PREFIX_CHARS], "bench", created))
        rare_at = set(pick.sample(range(MESSAGES_PER_USER), RARE_PER_USER))
        common = 0
        per_session = MESSAGES_PER_USER // SESSIONS_PER_USER
        for slot in range(SESSIONS_PER_USER):
            session_id = uuid.uuid4()
            started = created + timedelta(minutes=slot)
            batch.sessions.append((session_id, user_id, config_id, started, started, per_session))
            lengths = [pick.randint(8, 60) for _ in range(per_session)]
            drawn = pick.choices(words, cum_weights=weights, k=sum(lengths))
            start = 0
            for seq, length in enumerate(lengths, 1):
                text = drawn[start : start + length]
                start += length
                if pick.random() < COMMON_SHARE:
                    text.insert(pick.randrange(length), COMMON)
                    common += 1
                if slot * per_session + seq - 1 in rare_at:
                    text.insert(pick.randrange(length), RARE)
                sentence = " ".join(text)
                batch.messages.append(
                    (
                        uuid.uuid4(),
                        session_id,
                        seq,
                        "user" if seq % 2 else "ai",
                        sentence[0].upper() + sentence[1:] + ".",
                        started + timedelta(seconds=seq),
                    )
                )
        corpus.users.append(SeededUser(str(user_id), secret, common))
    corpus.messages += count * MESSAGES_PER_USER
    return batch


SEARCH_INDEX = (
    'CREATE INDEX IF NOT EXISTS "idx_messages_search" ON "messages" '
    "USING GIN (to_tsvector('english', \"content\"))"
)
USER_COLUMNS = ["id", "name", "role", "created_at"]
KEY_COLUMNS = ["id", "user_id", "key_digest", "prefix", "label", "created_at"]
SESSION_COLUMNS = ["id", "user_id", "model_config_id", "created_at", "updated_at", "last_seq"]
MESSAGE_COLUMNS = ["id", "session_id", "seq", "type", "content", "created_at"]


async def grow_postgres(url: str, corpus: Corpus, size: int, pick: random.Random) -> float:
    """Add users until the database holds `size` messages; the seconds it took."""
    started = time.monotonic()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '512MB'")
        config_id = await connection.fetchval("SELECT id FROM model_configs LIMIT 1")
        await connection.execute('DROP INDEX IF EXISTS "idx_messages_search"')
        while corpus.messages < size:
            count = min(50, (size - corpus.messages) // MESSAGES_PER_USER)
            batch = make_users(corpus, count, config_id, pick)
            for table, rows, columns in (
                ("users", batch.users, USER_COLUMNS),
                ("api_keys", batch.keys, KEY_COLUMNS),
                ("chat_sessions", batch.sessions, SESSION_COLUMNS),
                ("messages", batch.messages, MESSAGE_COLUMNS),
            ):
                await connection.copy_records_to_table(table, records=rows, columns=columns)
        progress(f"  postgres: {corpus.messages:,} messages written, building the index")
        await connection.execute(SEARCH_INDEX)
        for table in ("users", "api_keys", "chat_sessions", "messages"):
            await connection.execute(f'VACUUM ANALYZE "{table}"')
    finally:
        await connection.close()
    return time.monotonic() - started


def grow_sqlite(path: Path, corpus: Corpus, size: int, pick: random.Random) -> float:
    """As `grow_postgres`, on a SQLite file: one transaction of executemany."""
    started = time.monotonic()
    database = sqlite3.connect(path)
    try:
        (config_id,) = database.execute("SELECT id FROM model_configs LIMIT 1").fetchone()
        with database:
            while corpus.messages < size:
                count = min(50, (size - corpus.messages) // MESSAGES_PER_USER)
                batch = make_users(corpus, count, config_id, pick)
                for table, rows, columns in (
                    ("users", batch.users, USER_COLUMNS),
                    ("api_keys", batch.keys, KEY_COLUMNS),
                    ("chat_sessions", batch.sessions, SESSION_COLUMNS),
                    ("messages", batch.messages, MESSAGE_COLUMNS),
                ):
                    marks = ", ".join("?" for _ in columns)
                    names = ", ".join(f'"{c}"' for c in columns)
                    database.executemany(
                        f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                        [tuple(_sqlite_value(v) for v in row) for row in rows],
                    )
        database.execute("ANALYZE")
    finally:
        database.close()
    return time.monotonic() - started


def _sqlite_value(value: Any) -> Any:
    # As Tortoise writes ids and times to SQLite.
    if isinstance(value, uuid.UUID):
        return str(value)
    return value.isoformat(" ", timespec="microseconds") if isinstance(value, datetime) else value


# Measuring -----------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def timed(
    call: Callable[[int], Awaitable[object]], *, runs: int, seconds: float
) -> dict[str, Any]:
    """Latency of `call(n)` for n = 0, 1, 2...: after 3 warm-up calls, `runs` calls or
    `seconds`, whichever ends first (at least 5)."""
    for n in range(3):
        await call(n)
    times: list[float] = []
    deadline = time.monotonic() + seconds
    for n in range(runs):
        begun = time.perf_counter()
        await call(n)
        times.append((time.perf_counter() - begun) * 1000)
        if n >= 4 and time.monotonic() > deadline:
            break
    times.sort()
    return {
        "runs": len(times),
        "p50_ms": round(percentile(times, 0.50), 3),
        "p99_ms": round(percentile(times, 0.99), 3),
        "mean_ms": round(sum(times) / len(times), 3),
    }


def scan_statement(dialect: str, *, admin: bool) -> str:
    """The naive search: the same ownership rule, a pattern over every message's text."""
    marker = "$" if dialect == "postgres" else "?"
    like = "ILIKE" if dialect == "postgres" else "LIKE"  # SQLite's LIKE ignores ASCII case
    return (
        "SELECT m.*, count(*) OVER () AS total "
        "FROM messages AS m JOIN chat_sessions AS s ON s.id = m.session_id "
        f"WHERE m.content {like} {marker}1 "
        f"AND ({'TRUE' if admin else 'FALSE'} OR s.user_id = {marker}2) "
        f"ORDER BY m.created_at DESC, m.id DESC LIMIT {PAGE}"
    )


def page_statement(dialect: str, caller: Caller, word: str) -> tuple[str, Any]:
    """The statement of the search's first page, as the service writes it."""
    if dialect == "postgres":
        backend: search._Backend = search._Postgres(caller=caller, text=word, session_id=None)
    else:
        text = search._fts5_expression(word)
        backend = search._Sqlite(caller=caller, text=text, session_id=None)
    return backend.page_statement(offset=0, limit=PAGE)


async def plan_of(dialect: str, sql: str, values: Any) -> dict[str, Any]:
    connection = connections.get("default")
    if dialect == "postgres":
        (row,) = await connection.execute_query_dict("EXPLAIN (FORMAT JSON) " + sql, values)
        nodes = []
        pending = [json.loads(row["QUERY PLAN"])[0]["Plan"]]
        while pending:
            node = pending.pop()
            nodes.append(node)
            pending.extend(node.get("Plans", []))
        return {
            "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
            "scans_all_messages": any(
                n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "messages" for n in nodes
            ),
        }
    rows = await connection.execute_query_dict("EXPLAIN QUERY PLAN " + sql, values)
    details = [str(row["detail"]) for row in rows]
    indexes = set()
    for detail in details:
        if " VIRTUAL TABLE INDEX " in detail:
            indexes.add(detail.split()[1] + " (FTS5)")
        elif " USING " in detail and "INDEX " in detail:
            indexes.add(detail.split("INDEX ", 1)[1].split(" ")[0])
    return {
        "indexes": sorted(indexes),
        "scans_all_messages": any(re.match(r"SCAN (m|messages)( |$)", d) for d in details),
    }


@dataclass
class Case:
    word: str
    admin: bool

    @property
    def name(self) -> str:
        kind = "rare" if self.word == RARE else "common"
        return f"{kind} word '{self.word}', as {'an admin' if self.admin else 'a user'}"


CASES = [Case(RARE, False), Case(COMMON, False), Case(RARE, True), Case(COMMON, True)]


async def measure_database(
    dialect: str, url: str, corpus: Corpus, args: argparse.Namespace
) -> dict[str, Any]:
    """Index and scan, every case, on the database at `url` (Tortoise in this process)."""
    results: dict[str, Any] = {}
    admin = Caller(str(uuid.uuid4()), "bench-admin", Role.ADMIN)
    users = corpus.users
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(url))
        connection = connections.get("default")
        for case in CASES:

            def caller(n: int, case: Case = case) -> Caller:
                if case.admin:
                    return admin
                user = users[n % len(users)]
                return Caller(user.user_id, "bench", Role.USER)

            def user_of(n: int, case: Case = case) -> SeededUser | None:
                return None if case.admin else users[n % len(users)]

            # Every path must find what was seeded, before it is timed.
            found = await search.search(caller=caller(0), query=case.word, limit=PAGE)
            expected = corpus.expected(case.word, user_of(0))
            if found.total != expected:
                raise RuntimeError(f"{case.name}: the index found {found.total}, not {expected}")
            scan_sql = scan_statement(dialect, admin=case.admin)
            scan_args = [f"%{case.word}%", admin.user_id if case.admin else users[0].user_id]
            rows = await connection.execute_query_dict(scan_sql, scan_args)
            if (rows[0]["total"] if rows else 0) != expected:
                raise RuntimeError(f"{case.name}: the scan found another total")

            async def by_index(n: int, case: Case = case) -> object:
                return await search.search(caller=caller(n), query=case.word, limit=PAGE)

            async def by_scan(n: int, case: Case = case, sql: str = scan_sql) -> object:
                who = caller(n)
                return await connection.execute_query_dict(sql, [f"%{case.word}%", who.user_id])

            progress(f"  {dialect} {corpus.messages:,}: {case.name}")
            index_time = await timed(by_index, runs=args.runs, seconds=args.seconds)
            scan_time = await timed(by_scan, runs=args.runs, seconds=args.seconds)
            results[case.name] = {
                "admin": case.admin,
                "matches": expected,
                INDEX: {
                    **index_time,
                    "plan": await plan_of(dialect, *page_statement(dialect, caller(0), case.word)),
                },
                SCAN: {**scan_time, "plan": await plan_of(dialect, scan_sql, scan_args)},
                "scan_over_index_p50": round(scan_time["p50_ms"] / index_time["p50_ms"], 2),
            }
    return results


async def measure_rest(
    base: str, admin_key: str, corpus: Corpus, args: argparse.Namespace
) -> dict[str, Any]:
    """GET /api/v1/search through the running gateway, one request at a time."""
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for case in CASES:

            async def call(n: int, case: Case = case) -> object:
                key = admin_key if case.admin else corpus.users[n % len(corpus.users)].key
                async with http.get(
                    f"{base}/api/v1/search",
                    params={"q": case.word, "page_size": str(PAGE)},
                    headers={"Authorization": f"Bearer {key}"},
                ) as response:
                    body = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"{case.name}: {response.status} {body}")
                user = None if case.admin else corpus.users[n % len(corpus.users)]
                if n < 3 and body["data"]["total"] != corpus.expected(case.word, user):
                    raise RuntimeError(f"{case.name}: REST found {body['data']['total']}")
                return body

            results[case.name] = await timed(call, runs=args.runs, seconds=args.seconds)
    return results


# Report --------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = [
        "| database | messages | case | matches | index p50 / p99 ms | scan p50 / p99 ms "
        "| scan/index (p50) | REST p50 / p99 ms | index plan | scan reads |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in report["runs"]:
        for name, result in run["cases"].items():
            index, scan = result[INDEX], result[SCAN]
            rest = run.get("rest", {}).get(name)
            rest_text = f"{rest['p50_ms']:.2f} / {rest['p99_ms']:.2f}" if rest else "-"
            plan = ", ".join(index["plan"]["indexes"]) or "none"
            # An admin's scan reads every message (SQLite's, through every session's).
            every = result["admin"] or scan["plan"]["scans_all_messages"]
            reads = "every message" if every else "the user's own"
            if index["plan"]["scans_all_messages"]:
                plan += " + SCAN OF ALL MESSAGES"
            lines.append(
                f"| {run['database']} | {run['messages']:,} | {name} | {result['matches']:,} "
                f"| {index['p50_ms']:.2f} / {index['p99_ms']:.2f} "
                f"| {scan['p50_ms']:.2f} / {scan['p99_ms']:.2f} "
                f"| {result['scan_over_index_p50']:.1f}x | {rest_text} | {plan} "
                f"| {reads} |"
            )
    return "\n".join(lines)


def sizes(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if any(v % MESSAGES_PER_USER or v <= 0 for v in values):
        raise SystemExit(f"sizes must be positive multiples of {MESSAGES_PER_USER}: {text}")
    return values


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sqlite-sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-rest", action="store_true")
    parser.add_argument(
        "--postgres-server",
        default=os.environ.get(
            "TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.sqlite_sizes, args.runs, args.seconds = "2000", "2000", 5, 1.0
    report: dict[str, Any] = {
        "rare_word": RARE,
        "common_word": COMMON,
        "page_size": PAGE,
        "runs": [],
        "started": datetime.now(UTC).isoformat(),
    }

    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(scratch_postgres(args.postgres_server))
        gateway = await stack.enter_async_context(
            running_gateway(url, admin=True, env={"WORKERS": "1"})
        )
        progress(f"postgres: {url.rsplit('/', 1)[-1]}, gateway at {gateway.base}")
        corpus = Corpus()
        pick = random.Random(42)
        for size in sizes(args.sizes):
            seeded = await grow_postgres(url, corpus, size, pick)
            progress(f"postgres: {size:,} messages ({seeded:.1f} s to write and index)")
            run: dict[str, Any] = {
                "database": "postgres",
                "messages": corpus.messages,
                "users": len(corpus.users),
                "seed_seconds": round(seeded, 1),
                "cases": await measure_database("postgres", url, corpus, args),
            }
            if not args.no_rest:
                run["rest"] = await measure_rest(
                    gateway.base, gateway.account["api_key"], corpus, args
                )
            report["runs"].append(run)

    if args.sqlite_sizes.strip():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "search.sqlite3"
            url = f"sqlite://{path}"
            async with TortoiseContext():
                await migrate.upgrade(url)
            with sqlite3.connect(path) as database:
                database.execute(
                    "INSERT INTO model_configs (id, provider, model_name, model_version, "
                    "parameters, is_default, version, created_at, updated_at) VALUES "
                    "(?, 'echo', 'echo', '1', '{}', 1, 1, ?, ?)",
                    (str(uuid.uuid4()), _sqlite_value(T0), _sqlite_value(T0)),
                )
            corpus = Corpus()
            pick = random.Random(42)
            for size in sizes(args.sqlite_sizes):
                seeded = grow_sqlite(path, corpus, size, pick)
                progress(f"sqlite: {size:,} messages ({seeded:.1f} s to write and index)")
                report["runs"].append(
                    {
                        "database": "sqlite",
                        "messages": corpus.messages,
                        "users": len(corpus.users),
                        "seed_seconds": round(seeded, 1),
                        "cases": await measure_database("sqlite", url, corpus, args),
                    }
                )

    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
