"""What the resumable-reply buffer costs, per piece and per reply, against no buffer at all
and against a Redis stream.

    .venv/bin/python bench/reply_buffer_cost.py [--database sqlite|postgres|both]
        [--sizes 50,200,1000] [--paced-sizes 50,200] [--paced-ms 20]
        [--rounds 5] [--paced-rounds 5] [--json results.json]

Needs PostgreSQL (`--postgres-server`, default postgres://postgres@127.0.0.1:5432/postgres,
trust auth) for `postgres`, and Redis (`--redis-url`, default redis://127.0.0.1:6379/0) plus
redis-py (`.venv/bin/pip install redis`; not a dependency of the gateway) for the Redis
rows, which are skipped without them. Takes about 7 minutes with `both` and the defaults.

For each database, on a migrated scratch database (dropped afterwards), with the app's own
lifespan and `Runtime` (`create_app`, as the tests do), streamed turns go through
`turns.run_turn(..., stream=True)` on the `echo` model (`prefix: ""`, so a question of
N words is a reply of exactly N pieces), each in a fresh session, while
`db.services.turns.ReplyWriter` is swapped, in this process only, for:

    off          a no-op writer with the same methods: the baseline
    table 0.1s   the real `ReplyWriter` (one INSERT of the pending pieces per 0.1 s)
    table/piece  the real writer made to INSERT every piece as it comes (no batching)
    redis 0.1s   a Redis stream written like the table: XADD of the pending pieces per
                 0.1 s, EXPIRE as the lease, DEL once stored
    redis/piece  the same, one XADD per piece

Two rates: `fast` (the model yields pieces as fast as it can: no pause between pieces) and
`paced` (`chunk_delay_ms`, default 20 ms a piece, `--paced-concurrency` replies at once).
A fast echo reply never gives the event loop back between pieces and lasts a few tens of
ms, so the 0.1 s writers write at most one chunk then (the rest is in the stored message):
`fast` shows the fixed cost per reply, `paced` the cost per piece. Paced replies stay at
200 pieces or fewer: echo types for 10 s at most (`MAX_TYPING_SECONDS`).
The variants run in rotating order within each round (A B C D E, B C D E A, ...) so drift
on a shared machine spreads over all of them; the table shows medians over rounds, and
the differences to `off` are medians of the per-round paired differences.

Measured per reply: the process's CPU time (`time.process_time`: the event loop and the
aiosqlite thread, so SQLite's own work is in it), the server CPU (the PostgreSQL backends
of the scratch database plus redis-server, read from /proc/<pid>/task/*/schedstat: servers
on this machine only; Redis's idle housekeeping cancels out in the differences) and the
wall time from sending the question to the stored reply. Writes per reply come from a
counting warm-up run of each case: ORM statements on reply_streams/reply_chunks (from the
`tortoise.db_client` debug log, which is off in the timed runs) and Redis commands / round
trips. Per-piece writers in `fast` mode get hardly a turn before the reply is stored and
write their backlog then, before the buffer goes: their cost is all in the figures.
Finally one chunk INSERT (ORM and raw asyncpg) and one XADD are timed alone: the price of
a round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from tortoise import Tortoise

from db import scratch
from db.identity import Caller
from db.models import ReplyChunk, ReplyStream, Role
from db.ports import Runtime
from db.services import model_configs, sessions, turns, users
from db.services.model_configs import ConfigChanges
from db.services.reply_buffer import FAILED_RETENTION, FLUSH_EVERY_SECONDS, ReplyWriter
from gateway.app import create_app
from gateway.providers import EchoProvider, ProviderRegistry
from gateway.settings import load_settings

try:
    import redis
    import redis.asyncio as aioredis
except ImportError:  # the Redis rows are skipped
    redis = None  # type: ignore[assignment]
    aioredis = None  # type: ignore[assignment]

logger = logging.getLogger("bench.reply_buffer_cost")
ROOT = Path(__file__).resolve().parent.parent

WORD = "lorem "  # one echo piece
MICRO_OPERATIONS = 500


# --- the writers compared ------------------------------------------------------------------


class BufferWriter(Protocol):
    """What a turn uses of a `ReplyWriter`: `async with writer as buffer`, `add` each
    piece, `stop` before the reply is stored, `stored` once it is (the turn's write drops
    the table buffer); leaving the block otherwise marks the reply failed."""

    reply_id: str

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def add(self, text: str) -> None: ...

    async def stop(self) -> None: ...

    def stored(self) -> None: ...


WriterClass = Callable[..., BufferWriter]


class NoBuffer:
    """The baseline: the writer's methods, doing nothing."""

    def __init__(self, *, reply_id: str, session_id: str, lease_seconds: float) -> None:
        self.reply_id = reply_id
        self.session_id = session_id

    async def __aenter__(self) -> NoBuffer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def add(self, text: str) -> None:
        return None

    async def stop(self) -> None:
        return None

    def stored(self) -> None:
        return None


class TablePerPiece(ReplyWriter):
    """The real writer, but every piece is INSERTed on its own as soon as it comes."""

    def __init__(self, *, reply_id: str, session_id: str, lease_seconds: float) -> None:
        super().__init__(reply_id=reply_id, session_id=session_id, lease_seconds=lease_seconds)
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def __aenter__(self) -> TablePerPiece:
        await super().__aenter__()
        await super()._stop_flushing()  # the 0.1 s flusher, replaced by one write per piece
        self._flusher = asyncio.create_task(self._write_each())
        return self

    def add(self, text: str) -> None:
        self._queue.put_nowait(text)

    async def _stop_flushing(self) -> None:
        # Every piece written, then the writer (idle on its queue) goes.
        await self._queue.join()
        if self._flusher is not None:
            self._flusher.cancel()
            with suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    async def _write_each(self) -> None:
        while True:
            text = await self._queue.get()
            try:
                self._pending.append(text)
                await self._flush()
            except Exception as exc:
                logger.warning("could not buffer reply %s: %s", self.reply_id, exc)
            finally:
                self._queue.task_done()


class RedisWriter:
    """A reply's buffer as a Redis stream `<prefix><reply id>`: a first entry with the
    state, then one entry per write (`start`, `text`); EXPIRE is the lease, DEL ends it."""

    client: ClassVar[Any] = None  # redis.asyncio.Redis, set before the runs
    prefix: ClassVar[str] = "bench:reply_buffer:"
    per_piece: ClassVar[bool] = False
    commands: ClassVar[int] = 0
    round_trips: ClassVar[int] = 0

    def __init__(self, *, reply_id: str, session_id: str, lease_seconds: float) -> None:
        self.reply_id = reply_id
        self.session_id = session_id
        self._key = self.prefix + reply_id
        self._lease = max(1, math.ceil(lease_seconds))
        self._pending: list[str] = []
        self._written = 0
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._renewed_at = 0.0
        self._stored = False
        self._stopping = asyncio.Event()

    @classmethod
    def _count(cls, commands: int) -> None:
        RedisWriter.commands += commands
        RedisWriter.round_trips += 1

    async def __aenter__(self) -> RedisWriter:
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self._key, {"state": "running", "session": self.session_id})
        pipe.expire(self._key, self._lease)
        await pipe.execute()
        self._count(2)
        self._renewed_at = asyncio.get_running_loop().time()
        work = self._write_each() if self.per_piece else self._flush_regularly()
        self._task = asyncio.create_task(work)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stored:  # no statement of the turn reaches Redis: the buffer goes here
            await self.client.delete(self._key)
            self._count(1)
        else:
            await self._failed("the reply was stopped")

    def add(self, text: str) -> None:
        if self.per_piece:
            self._queue.put_nowait(text)
        else:
            self._pending.append(text)

    async def stop(self) -> None:
        if self.per_piece:
            await self._queue.join()
        await self._stop()

    def stored(self) -> None:
        self._stored = True

    async def _failed(self, error: str) -> None:
        await self.stop()
        await self._flush()
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self._key, {"state": "failed", "error": error})
        pipe.expire(self._key, int(FAILED_RETENTION.total_seconds()))
        await pipe.execute()
        self._count(2)

    async def _stop(self) -> None:
        # As the table writer does: never cancelled mid-write (redis-py's connection does
        # not come back from a command cancelled half way).
        self._stopping.set()
        if self._task is not None:
            if self.per_piece:  # idle on its queue, which stop() has drained
                self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _flush_regularly(self) -> None:
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY_SECONDS):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self._flush()
                await self._renew_if_due()
            except Exception as exc:
                logger.warning("could not buffer reply %s: %s", self.reply_id, exc)

    async def _write_each(self) -> None:
        while True:
            text = await self._queue.get()
            try:
                self._pending.append(text)
                await self._flush()
                await self._renew_if_due()
            except Exception as exc:
                logger.warning("could not buffer reply %s: %s", self.reply_id, exc)
            finally:
                self._queue.task_done()

    async def _renew_if_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._renewed_at >= self._lease / 3:
            await self.client.expire(self._key, self._lease)
            self._count(1)
            self._renewed_at = now

    async def _flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            await self.client.xadd(self._key, {"start": self._written, "text": text})
        except BaseException:
            self._pending.insert(0, text)
            raise
        self._count(1)
        self._written += len(text)


class RedisPerFlush(RedisWriter):
    per_piece = False


class RedisPerPiece(RedisWriter):
    per_piece = True


@dataclass(frozen=True)
class Variant:
    name: str
    writer: WriterClass
    redis: bool = False


VARIANTS = (
    Variant("off", NoBuffer),
    Variant("table 0.1s", ReplyWriter),
    Variant("table/piece", TablePerPiece),
    Variant("redis 0.1s", RedisPerFlush, redis=True),
    Variant("redis/piece", RedisPerPiece, redis=True),
)


@contextmanager
def writer_used(writer: WriterClass) -> Iterator[None]:
    """A turn builds its buffer with `writer` for the duration."""
    namespace = vars(turns)
    original = namespace["ReplyWriter"]
    namespace["ReplyWriter"] = writer
    try:
        yield
    finally:
        namespace["ReplyWriter"] = original


# --- measuring -----------------------------------------------------------------------------


def cpu_ns(pid: int) -> int | None:
    """CPU time of every thread of `pid` so far, in ns; None if it is gone."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(FileNotFoundError, ProcessLookupError):
                total += int((task / "schedstat").read_text().split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return total


class ServerCpu:
    """CPU used by the PostgreSQL backends of our database and by redis-server."""

    def __init__(self, *, postgres: bool, redis_pid: int | None) -> None:
        self.postgres = postgres
        self.redis_pid = redis_pid

    async def _pids(self) -> set[int]:
        pids: set[int] = set()
        if self.postgres:
            rows = await Tortoise.get_connection("default").execute_query_dict(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
            pids.update(int(row["pid"]) for row in rows)
        if self.redis_pid is not None:
            pids.add(self.redis_pid)
        return pids

    async def snapshot(self) -> dict[int, int]:
        return {pid: ns for pid in await self._pids() if (ns := cpu_ns(pid)) is not None}

    async def since(self, before: dict[int, int]) -> float:
        """Seconds of server CPU since `before` (a backend that came since counts whole)."""
        total = 0
        for pid, ns in before.items():  # read first: the pid query below costs CPU too
            now = cpu_ns(pid)
            if now is not None:
                total += now - ns
        for pid in await self._pids() - before.keys():
            total += cpu_ns(pid) or 0
        return total / 1e9

    @staticmethod
    async def check_postgres() -> bool:
        """Whether the backends are processes of this machine we may read."""
        row = await Tortoise.get_connection("default").execute_query_dict(
            "SELECT pg_backend_pid() AS pid"
        )
        return cpu_ns(int(row[0]["pid"])) is not None


class StatementCounter(logging.Handler):
    """Counts the ORM's statements by verb and table, from its debug log."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        query = str(record.args[0]) if isinstance(record.args, tuple) else str(record.msg)
        verb = query.lstrip().split(" ", 1)[0].upper()
        if verb not in {"SELECT", "INSERT", "UPDATE", "DELETE"}:
            return
        if verb == "DELETE" and "expires_at" in query:
            self.counts["sweep"] += 1  # the app's minutely sweep, not part of any turn
            return
        self.counts["all"] += 1
        for table in ("reply_streams", "reply_chunks"):
            if table in query:
                self.counts[f"{verb} {table}"] += 1
                self.counts[verb] += 1


@contextmanager
def counting_statements() -> Iterator[StatementCounter]:
    log = logging.getLogger("tortoise.db_client")
    counter = StatementCounter()
    level, propagate = log.level, log.propagate
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(counter)
    try:
        yield counter
    finally:
        log.removeHandler(counter)
        log.setLevel(level)
        log.propagate = propagate


@dataclass
class Sample:
    """One run of one variant: per-reply means."""

    cpu_ms: float
    server_ms: float
    wall_ms: float


@dataclass
class Writes:
    """Per reply, from the counting run."""

    statements: float = 0.0  # every ORM statement of the turn
    inserts: float = 0.0  # on reply_streams/reply_chunks
    updates: float = 0.0
    deletes: float = 0.0
    selects: float = 0.0
    redis_commands: float = 0.0
    redis_round_trips: float = 0.0


@dataclass
class Case:
    database: str
    rate: str  # "fast" or "paced N ms"
    pieces: int
    replies_per_run: int
    concurrency: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    writes: dict[str, Writes] = field(default_factory=dict)


@dataclass
class Micro:
    store: str
    operation: str
    wall_p50_us: float
    wall_p99_us: float
    cpu_us: float
    server_us: float


class Bench:
    """One database's app, caller and configs, and the turns run on it."""

    def __init__(self, database: str, runtime: Runtime, caller: Caller, server: ServerCpu) -> None:
        self.database = database
        self.runtime = runtime
        self.caller = caller
        self.server = server
        self.configs: dict[float, str] = {}

    async def config(self, delay_ms: float) -> str:
        if delay_ms not in self.configs:
            config = await model_configs.create(
                caller=self.caller,
                registry=self.runtime.models,
                values=ConfigChanges(
                    provider="echo",
                    model_name=f"bench-echo-{delay_ms:g}ms",
                    model_version="1",
                    parameters={"prefix": "", "chunk_delay_ms": delay_ms},
                ),
            )
            self.configs[delay_ms] = str(config.id)
        return self.configs[delay_ms]

    async def sessions(self, count: int, delay_ms: float) -> list[str]:
        config_id = await self.config(delay_ms)
        made = [
            await sessions.create(caller=self.caller, model_config_id=config_id)
            for _ in range(count)
        ]
        return [str(session.id) for session in made]

    async def reply(self, session_id: str, pieces: int) -> float:
        """One streamed turn, to its stored reply; returns its wall time in seconds."""
        question = (WORD * pieces).rstrip()
        started = time.perf_counter()
        got = 0
        stored = False
        turn = turns.run_turn(
            runtime=self.runtime,
            caller=self.caller,
            request=turns.SendRequest(session_id=session_id, content=question),
            stream=True,
        )
        async with aclosing(turn) as events:
            async for event in events:
                if isinstance(event, turns.ReplyPiece):
                    got += 1
                elif isinstance(event, turns.AiMessageStored):
                    stored = True
        took = time.perf_counter() - started
        if got != pieces or not stored:
            raise RuntimeError(f"expected {pieces} pieces and a stored reply, got {got}")
        return took

    async def _replies(
        self,
        variant: Variant,
        case: Case,
        delay_ms: float,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> list[float]:
        """`case.replies_per_run` replies with `variant`'s writer, `case.concurrency` at once,
        each in a session of its own made beforehand (then `before` runs); their wall times."""
        session_ids = await self.sessions(case.replies_per_run, delay_ms)
        gc.collect()
        walls: list[float] = []
        batches = math.ceil(len(session_ids) / case.concurrency)
        limit = batches * (30 + 3 * case.pieces * delay_ms / 1000)
        with writer_used(variant.writer):
            if before is not None:
                await before()
            try:
                async with asyncio.timeout(limit):
                    for first in range(0, len(session_ids), case.concurrency):
                        batch = session_ids[first : first + case.concurrency]
                        replies = (self.reply(sid, case.pieces) for sid in batch)
                        walls += await asyncio.gather(*replies)
            except TimeoutError:
                dump_tasks()
                raise RuntimeError(f"{variant.name}: replies stuck for {limit:.0f} s") from None
        return walls

    async def sample(self, variant: Variant, case: Case, delay_ms: float) -> Sample:
        """A timed run: CPU, server CPU and wall time per reply."""
        server_before: dict[int, int] = {}
        cpu_before = 0.0

        async def start_clocks() -> None:
            nonlocal server_before, cpu_before
            server_before = await self.server.snapshot()
            cpu_before = time.process_time()

        walls = await self._replies(variant, case, delay_ms, before=start_clocks)
        cpu = time.process_time() - cpu_before
        server = await self.server.since(server_before)
        return Sample(
            cpu_ms=cpu / len(walls) * 1000,
            server_ms=server / len(walls) * 1000,
            wall_ms=statistics.fmean(walls) * 1000,
        )

    async def writes(self, variant: Variant, case: Case, delay_ms: float) -> Writes:
        """A counting run (not timed): the writes per reply."""
        commands, trips = RedisWriter.commands, RedisWriter.round_trips
        with counting_statements() as statements:
            n = len(await self._replies(variant, case, delay_ms))
        return Writes(
            statements=statements.counts["all"] / n,
            inserts=statements.counts["INSERT"] / n,
            updates=statements.counts["UPDATE"] / n,
            deletes=statements.counts["DELETE"] / n,
            selects=statements.counts["SELECT"] / n,
            redis_commands=(RedisWriter.commands - commands) / n,
            redis_round_trips=(RedisWriter.round_trips - trips) / n,
        )

    async def chunk_inserts(self, count: int) -> list[Micro]:
        """One chunk INSERT as the writer does it (and, on PostgreSQL, with asyncpg alone)."""
        session_id = (await self.sessions(1, 0))[0]
        stream_id = str(uuid.uuid4())
        await ReplyStream.create(
            id=stream_id, session_id=session_id, expires_at=datetime.now(UTC) + timedelta(hours=1)
        )
        results: list[Micro] = []
        try:

            async def orm_insert(number: int) -> object:
                return await ReplyChunk.create(stream_id=stream_id, start=number, text=WORD)

            results.append(
                await round_trips(
                    self.database, "chunk INSERT (ORM)", self.server, orm_insert, count
                )
            )
            if self.database == "postgres":
                client: Any = Tortoise.get_connection("default")
                offset = 10 * count
                async with client.acquire_connection() as connection:

                    async def raw_insert(number: int) -> object:
                        return await connection.execute(
                            'INSERT INTO "reply_chunks" ("stream_id", "start", "text") '
                            "VALUES ($1, $2, $3)",
                            uuid.UUID(stream_id),
                            offset + number,
                            WORD,
                        )

                    results.append(
                        await round_trips(
                            self.database, "chunk INSERT (asyncpg)", self.server, raw_insert, count
                        )
                    )
        finally:
            await ReplyStream.filter(id=stream_id).delete()
        return results


def dump_tasks() -> None:
    """Where every task waits: what a stuck run shows before it stops."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=12, file=sys.stderr)


async def round_trips(
    store: str,
    operation: str,
    server: ServerCpu,
    write: Callable[[int], Awaitable[object]],
    count: int,
) -> Micro:
    """`count` sequential round trips of `write(i)`, after 50 unmeasured ones."""
    for number in range(50):
        await write(number)
    gc.collect()
    latencies: list[float] = []
    server_before = await server.snapshot()
    cpu_before = time.process_time()
    for number in range(50, 50 + count):
        started = time.perf_counter()
        await write(number)
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_before
    server_cpu = await server.since(server_before)
    latencies.sort()
    return Micro(
        store=store,
        operation=operation,
        wall_p50_us=statistics.median(latencies) * 1e6,
        wall_p99_us=latencies[max(0, math.ceil(count * 0.99) - 1)] * 1e6,
        cpu_us=cpu / count * 1e6,
        server_us=server_cpu / count * 1e6,
    )


async def xadds(client: Any, server: ServerCpu, count: int) -> Micro:
    """One XADD of a piece, as the Redis writers do it."""
    key = f"{RedisWriter.prefix}micro:{uuid.uuid4()}"

    async def xadd(number: int) -> object:
        return await client.xadd(key, {"start": number, "text": WORD})

    try:
        return await round_trips("redis", "XADD (redis-py)", server, xadd, count)
    finally:
        await client.delete(key)


# --- running -------------------------------------------------------------------------------


def _is_local_process(pid: int, name: str) -> bool:
    comm = Path(f"/proc/{pid}/comm")
    return comm.exists() and name in comm.read_text()


async def redis_client(url: str) -> tuple[Any, int | None, str]:
    """A connected client, redis-server's pid if it runs on this machine, and a note."""
    if aioredis is None:
        return None, None, "no Redis rows: redis-py is not installed (.venv/bin/pip install redis)"
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
    except Exception as exc:
        await client.aclose()
        return None, None, f"no Redis rows: Redis at {url} does not answer ({exc})"
    pid = int(info["process_id"])
    local = _is_local_process(pid, "redis")
    persistence = await client.config_get("appendonly")
    persistence.update(await client.config_get("save"))
    hiredis = importlib.util.find_spec("hiredis") is not None
    note = (
        f"Redis {info.get('redis_version', '?')} at {url} (appendonly "
        f"{persistence.get('appendonly', '?')!s}, save {persistence.get('save', '')!s:.20}"
        f"), redis-py {redis.__version__} ({'with' if hiredis else 'without'} hiredis)"
    )
    if not local:
        note += " (not on this machine: no Redis server CPU)"
    return client, pid if local else None, note


def cases_for(database: str, options: argparse.Namespace) -> list[tuple[Case, float, int]]:
    """(case, chunk delay in ms, rounds) for every size and rate."""
    cases: list[tuple[Case, float, int]] = []
    for pieces in options.sizes:
        per_run = max(3, options.fast_pieces_per_run // pieces)
        cases.append((Case(database, "fast", pieces, per_run, 1), 0.0, options.rounds))
    concurrency = options.paced_concurrency
    for pieces in options.paced_sizes:
        rate = f"paced {options.paced_ms:g} ms"
        case = Case(database, rate, pieces, concurrency, concurrency)
        cases.append((case, options.paced_ms, options.paced_rounds))
    return cases


async def bench_database(
    database: str, options: argparse.Namespace, redis_pid: int | None, notes: list[str]
) -> tuple[list[Case], list[Micro]]:
    """Every case on a migrated scratch database of `database`, dropped afterwards."""
    if database == "sqlite":
        with scratch.sqlite_database() as url:
            return await _on_database(database, url, options, redis_pid, notes)
    url = await scratch.create_postgres(options.postgres_server, prefix="cgw_bench")
    try:
        return await _on_database(database, url, options, redis_pid, notes)
    finally:
        await scratch.drop_postgres(options.postgres_server, url)


async def migrated(url: str) -> None:
    """Apply the migrations in a process of their own: aerich's Tortoise set-up cannot
    follow an app's lifespan in one process."""
    script = (
        "import asyncio, sys; from db import migrate; asyncio.run(migrate.upgrade(sys.argv[1]))"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, cwd=ROOT)
    if await process.wait() != 0:
        raise RuntimeError(f"could not migrate {url}")


async def _on_database(
    database: str, url: str, options: argparse.Namespace, redis_pid: int | None, notes: list[str]
) -> tuple[list[Case], list[Micro]]:
    await migrated(url)
    settings = load_settings(database_url=url, log_level="warning", _env_file=None)
    app = create_app(settings, models=ProviderRegistry([EchoProvider()]))
    async with app.router.lifespan_context(app):
        await model_configs.ensure_builtin()
        user, _ = await users.create(name="bench", role=Role.ADMIN)
        caller = Caller(user_id=str(user.id), name="bench", role=Role.ADMIN)
        postgres_cpu = database == "postgres" and await ServerCpu.check_postgres()
        if database == "postgres" and not postgres_cpu:
            notes.append("PostgreSQL backends are not readable here: no PostgreSQL server CPU")
        if database == "postgres":
            settings_rows = await Tortoise.get_connection("default").execute_query_dict(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('server_version', 'fsync', 'synchronous_commit')"
            )
            pg = {row["name"]: row["setting"] for row in settings_rows}
            notes.append(
                f"PostgreSQL {pg.get('server_version')} (fsync {pg.get('fsync')}, "
                f"synchronous_commit {pg.get('synchronous_commit')})"
            )
        runtime: Runtime = app.state.runtime
        lease = f"lease {runtime.limits.turn_lease_seconds:g} s"
        if not any(lease in note for note in notes):
            notes.append(
                f"reply_buffer.FLUSH_EVERY_SECONDS = {FLUSH_EVERY_SECONDS}; {lease}, renewed "
                "every third of it: never within these replies"
            )
        bench = Bench(
            database, runtime, caller, ServerCpu(postgres=postgres_cpu, redis_pid=redis_pid)
        )
        variants = [v for v in VARIANTS if RedisWriter.client is not None or not v.redis]
        micro = await bench.chunk_inserts(MICRO_OPERATIONS)
        cases: list[Case] = []
        for case, delay_ms, rounds in cases_for(database, options):
            label = f"{database} {case.rate} {case.pieces} pieces"
            # The counting run doubles as a warm-up of every variant.
            for variant in variants:
                case.writes[variant.name] = await bench.writes(variant, case, delay_ms)
            for round_number in range(rounds):
                shift = round_number % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    sample = await bench.sample(variant, case, delay_ms)
                    case.samples.setdefault(variant.name, []).append(sample)
                print(f"  {label}: round {round_number + 1}/{rounds}", file=sys.stderr)
            cases.append(case)
        return cases, micro


# --- reporting -----------------------------------------------------------------------------

METRICS = ("cpu_ms", "server_ms", "wall_ms")


def paired(case: Case, name: str, metric: str) -> list[float]:
    """Per round: the variant's value minus `off`'s in the same round."""
    return [
        getattr(sample, metric) - getattr(base, metric)
        for sample, base in zip(case.samples[name], case.samples["off"], strict=True)
    ]


def summary(case: Case) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for name, samples in case.samples.items():
        row = {metric: statistics.median(getattr(s, metric) for s in samples) for metric in METRICS}
        for metric in METRICS:
            diffs = paired(case, name, metric)
            row[f"delta_{metric}"] = statistics.median(diffs)
            row[f"delta_{metric}_min"] = min(diffs)
            row[f"delta_{metric}_max"] = max(diffs)
            row[f"delta_{metric}_per_piece_us"] = statistics.median(diffs) * 1000 / case.pieces
        rows[name] = row
    return rows


def writes_text(writes: Writes) -> str:
    if writes.redis_commands:
        return f"{writes.redis_commands:.1f} cmd in {writes.redis_round_trips:.1f} rt"
    if writes.inserts or writes.deletes or writes.updates:
        return f"{writes.inserts:.1f} INS {writes.updates:.1f} UPD {writes.deletes:.1f} DEL"
    return "-"


def print_tables(cases: Sequence[Case], micro: Sequence[Micro], notes: Sequence[str]) -> None:
    print()
    for note in notes:
        print(note)
    print(
        "Per reply, medians over rounds. Δ: the variant minus `off` in the same round "
        "(median of the pairs; ΔCPU ms per reply, then per piece with its range over rounds "
        "in brackets; Δsrv per piece; Δwall per reply). stmts: every ORM "
        "statement of the turn; buffer writes: INSERT/UPDATE/DELETE on reply_streams and "
        "reply_chunks, or Redis commands in round trips."
    )
    header = (
        f"{'variant':12} {'CPU ms':>8} {'srv ms':>7} {'wall ms':>8} "
        f"{'ΔCPU ms':>7} {'ΔCPU µs/piece':>20} {'Δsrv µs/pc':>10} {'Δwall ms':>9} "
        f"{'stmts':>6}  buffer writes/reply"
    )
    for case in cases:
        rounds = len(case.samples["off"])
        at_once = f", {case.concurrency} at once" if case.concurrency > 1 else ""
        print()
        print(
            f"== {case.database}, {case.rate}, {case.pieces} pieces "
            f"({rounds} rounds x {case.replies_per_run} replies{at_once})"
        )
        print(header)
        for name, row in summary(case).items():
            per = 1000 / case.pieces
            if name == "off":
                delta_reply = delta_cpu = delta_server = delta_wall = ""
            else:
                low, high = row["delta_cpu_ms_min"] * per, row["delta_cpu_ms_max"] * per
                delta_reply = f"{row['delta_cpu_ms']:+.2f}"
                delta_cpu = f"{row['delta_cpu_ms'] * per:.1f} ({low:.0f}..{high:.0f})"
                delta_server = f"{row['delta_server_ms'] * per:.1f}"
                delta_wall = f"{row['delta_wall_ms']:+.1f}"
            writes = case.writes[name]
            print(
                f"{name:12} {row['cpu_ms']:8.2f} {row['server_ms']:7.2f} {row['wall_ms']:8.1f} "
                f"{delta_reply:>7} {delta_cpu:>20} {delta_server:>10} {delta_wall:>9} "
                f"{writes.statements:6.1f}  {writes_text(writes)}"
            )
    print()
    print(f"== one write alone: {MICRO_OPERATIONS} round trips in a row, per round trip")
    print(
        f"{'store':9} {'operation':24} {'wall p50 µs':>11} {'p99 µs':>8} "
        f"{'client CPU µs':>13} {'server CPU µs':>13}"
    )
    for trip in micro:
        print(
            f"{trip.store:9} {trip.operation:24} {trip.wall_p50_us:11.0f} {trip.wall_p99_us:8.0f} "
            f"{trip.cpu_us:13.1f} {trip.server_us:13.1f}"
        )


def write_json(
    path: str, cases: Sequence[Case], micro: Sequence[Micro], options: argparse.Namespace
) -> None:
    document = {
        "options": {k: v for k, v in vars(options).items() if k != "json"},
        "flush_every_seconds": FLUSH_EVERY_SECONDS,
        "cases": [
            {
                "database": case.database,
                "rate": case.rate,
                "pieces": case.pieces,
                "replies_per_run": case.replies_per_run,
                "concurrency": case.concurrency,
                "summary": summary(case),
                "samples": {
                    name: [asdict(s) for s in samples] for name, samples in case.samples.items()
                },
                "writes_per_reply": {name: asdict(w) for name, w in case.writes.items()},
            }
            for case in cases
        ],
        "round_trips": [asdict(row) for row in micro],
    }
    Path(path).write_text(json.dumps(document, indent=2))


async def measure(options: argparse.Namespace) -> Results:
    """The worker: every case on one database, in a process of its own (the ORM builds its
    queries for the first dialect it meets, so one process cannot serve both)."""
    client, redis_pid, redis_note = await redis_client(options.redis_url)
    RedisWriter.client = client
    notes = [
        f"event loop: {options.loop}; Python {sys.version.split()[0]}; {redis_note}",
        "srv = server CPU: PostgreSQL backends of the scratch database + redis-server "
        "(SQLite works inside this process: its CPU is in `CPU ms`)",
    ]
    try:
        cases, micro = await bench_database(options.database, options, redis_pid, notes)
    finally:
        if client is not None:
            leftovers = [key async for key in client.scan_iter(f"{RedisWriter.prefix}*")]
            if leftovers:
                await client.delete(*leftovers)
            await client.aclose()
    return Results(cases, micro, notes)


@dataclass
class Results:
    cases: list[Case]
    micro: list[Micro]
    notes: list[str]

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        cases = []
        for raw in data["cases"]:
            case = Case(**{k: v for k, v in raw.items() if k not in ("samples", "writes")})
            case.samples = {
                name: [Sample(**s) for s in samples] for name, samples in raw["samples"].items()
            }
            case.writes = {name: Writes(**w) for name, w in raw["writes"].items()}
            cases.append(case)
        return cls(cases, [Micro(**m) for m in data["micro"]], list(data["notes"]))


def worker_arguments(options: argparse.Namespace, database: str, output: Path) -> list[str]:
    def joined(values: Sequence[int]) -> str:
        return ",".join(map(str, values))

    return [
        *("--database", database, "--worker-output", str(output)),
        *("--postgres-server", options.postgres_server, "--redis-url", options.redis_url),
        *("--sizes", joined(options.sizes), "--paced-sizes", joined(options.paced_sizes)),
        *("--paced-ms", str(options.paced_ms)),
        *("--paced-concurrency", str(options.paced_concurrency)),
        *("--rounds", str(options.rounds), "--paced-rounds", str(options.paced_rounds)),
        *("--fast-pieces-per-run", str(options.fast_pieces_per_run), "--loop", options.loop),
    ]


async def main(options: argparse.Namespace) -> Results:
    """Each database in a worker process, one after the other; then one XADD alone."""
    databases = ["sqlite", "postgres"] if options.database == "both" else [options.database]
    results = Results([], [], [])
    with tempfile.TemporaryDirectory() as folder:
        for database in databases:
            print(f"measuring {database} ...", file=sys.stderr)
            output = Path(folder, f"{database}.json")
            worker = await asyncio.create_subprocess_exec(
                sys.executable, __file__, *worker_arguments(options, database, output), cwd=ROOT
            )
            if await worker.wait() != 0:
                raise SystemExit(f"the {database} worker failed")
            found = Results.load(output)
            results.cases += found.cases
            results.micro += found.micro
            results.notes += [note for note in found.notes if note not in results.notes]
    client, redis_pid, _ = await redis_client(options.redis_url)
    if client is not None:
        try:
            server = ServerCpu(postgres=False, redis_pid=redis_pid)
            results.micro.append(await xadds(client, server, MICRO_OPERATIONS))
        finally:
            await client.aclose()
    return results


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-server", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--sizes", type=sizes, default=[50, 200, 1000], help="of fast replies")
    parser.add_argument("--paced-sizes", type=sizes, default=[50, 200], help="of paced replies")
    parser.add_argument("--paced-ms", type=float, default=20.0, help="echo chunk_delay_ms")
    parser.add_argument("--paced-concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="of the fast cases")
    parser.add_argument("--paced-rounds", type=int, default=5)
    parser.add_argument(
        "--fast-pieces-per-run", type=int, default=1000, help="pieces per fast run (>= 3 replies)"
    )
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--worker-output", help=argparse.SUPPRESS)  # one database, raw
    options = parser.parse_args(argv)
    if options.worker_output and options.database == "both":
        parser.error("a worker measures one database")
    if options.rounds < 3 or options.paced_rounds < 3:
        parser.error("at least 3 rounds: the medians need them")
    return options


if __name__ == "__main__":
    arguments = parse_arguments()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if arguments.loop == "uvloop":
        import uvloop  # the server's loop: uvicorn picks it when installed

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if arguments.worker_output:
            measured = runner.run(measure(arguments))
            Path(arguments.worker_output).write_text(json.dumps(asdict(measured)))
            raise SystemExit(0)
        found = runner.run(main(arguments))
    print_tables(found.cases, found.micro, found.notes)
    if arguments.json:
        write_json(arguments.json, found.cases, found.micro, arguments)
        print(f"\nwrote {arguments.json}")
