"""The send-path benchmark (bench/send_path.py) runs, and the gateway's round trips per turn
on PostgreSQL stay within budget; bench/pg_wire.py counts round trips as the driver makes them.

PostgreSQL only: the benchmark needs a PostgreSQL server for its round-trip counts (and runs
the SQLite gateway itself), so the suite's SQLite run skips this module rather than doing the
same work twice. Nothing here asserts on a time.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.conftest import BACKEND, POSTGRES_SERVER
from tests.servers import REPO_ROOT, child_env

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres", reason="needs PostgreSQL; runs once, in the suite's PostgreSQL run"
)

BENCH = REPO_ROOT / "bench"
SMOKE_TIMEOUT = 180
# Round trips per turn the gateway may make on PostgreSQL (whole, streamed reply).
WHOLE_TURN_BUDGET = 7
STREAMED_TURN_BUDGET = 9


def _load_pg_wire() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pg_wire", BENCH / "pg_wire.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pg_wire = _load_pg_wire()


# The benchmark's smoke run ---------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`bench/send_path.py --smoke` once for the module: its exit status, output and JSON."""
    out = tmp_path_factory.mktemp("send-path") / "smoke.json"
    command = [
        *(sys.executable, str(BENCH / "send_path.py"), "--smoke", "--json", str(out)),
        *("--postgres-server", POSTGRES_SERVER),
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=SMOKE_TIMEOUT,
            check=False,
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = None
        output = f"timed out after {SMOKE_TIMEOUT} s\n{exc.stdout or ''}{exc.stderr or ''}"
    report = json.loads(out.read_text()) if out.exists() else None
    return {"returncode": returncode, "output": output, "report": report}


def test_the_smoke_run_measures_every_target_and_section(smoke: dict[str, Any]) -> None:
    assert smoke["returncode"] == 0, smoke["output"][-4000:]
    report = smoke["report"]
    assert report is not None, smoke["output"][-4000:]
    for target in ("direct", "gateway-sqlite", "gateway-pg"):
        for mode in ("whole-1", "streamed-1", "whole-32", "streamed-32"):
            row = report["send"][target][mode]
            assert row["rounds"][0]["replies"] > 0, (target, mode, row)
            assert row["errors"] == 0, (target, mode, row)
    assert set(report["rest"]["results"]) == {"gateway", "handwritten", "handwritten-offset"}
    assert all(report["rest"]["same_json"].values()), report["rest"]["same_json"]
    assert set(report["rss"]) == {"gateway-sqlite", "gateway-pg"}
    assert report["verdicts"]


def test_round_trips_per_turn_on_postgres_stay_within_budget(smoke: dict[str, Any]) -> None:
    assert smoke["report"] is not None, smoke["output"][-4000:]
    trips = smoke["report"]["round_trips"]
    statements = json.dumps(trips["statements"], indent=1)
    assert trips["whole_turn"] > 0 and trips["streamed_turn"] > 0 and trips["history_page"] > 0
    assert trips["whole_turn"] <= WHOLE_TURN_BUDGET, statements
    assert trips["streamed_turn"] <= STREAMED_TURN_BUDGET, statements


# The round-trip counter ------------------------------------------------------------------


def _through(proxy_port: int) -> str:
    parts = urlsplit(POSTGRES_SERVER)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(scheme="postgresql", netloc=f"{user}127.0.0.1:{proxy_port}"))


@pytest.fixture
async def proxy() -> AsyncIterator[Any]:
    server = urlsplit(POSTGRES_SERVER)
    counter = pg_wire.PgWireProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await counter.start()
    try:
        yield counter
    finally:
        await counter.close()


async def _spent(proxy: Any, work: Any) -> int:
    await proxy.quiet(still=0.05)
    before = proxy.snapshot()
    await work()
    await proxy.quiet(still=0.05)
    trips: int = (proxy.snapshot() - before).round_trips
    return trips


async def test_a_query_is_one_round_trip_once_its_statement_is_prepared(proxy: Any) -> None:
    # asyncpg's default sslmode "prefer" asks for SSL first: the proxy refuses it itself.
    connection = await asyncpg.connect(_through(proxy.port))
    try:
        # New to the statement cache: Parse/Describe/Flush, then Bind/Execute/Sync.
        assert await _spent(proxy, lambda: connection.fetchval("SELECT 1")) == 2
        assert await _spent(proxy, lambda: connection.fetchval("SELECT 1")) == 1
        # No arguments: a simple Query.
        assert await _spent(proxy, lambda: connection.execute("SELECT 1")) == 1
    finally:
        await connection.close()


async def test_giving_a_connection_back_to_the_pool_costs_the_reset(proxy: Any) -> None:
    async def no_reset(connection: asyncpg.Connection) -> None:
        pass

    for reset, expected in ((None, 2), (no_reset, 1)):
        pool = await asyncpg.create_pool(_through(proxy.port), min_size=1, max_size=1, reset=reset)
        try:

            async def query(pool: asyncpg.Pool = pool) -> None:
                async with pool.acquire() as connection:
                    await connection.fetchval("SELECT 1")

            await query()  # prepared
            # The query, then (default) one simple Query of advisory unlock, CLOSE ALL,
            # UNLISTEN *, RESET ALL.
            assert await _spent(proxy, query) == expected
        finally:
            await pool.close()


async def test_a_transaction_of_two_statements_is_four_round_trips(proxy: Any) -> None:
    connection = await asyncpg.connect(_through(proxy.port))
    try:
        await connection.fetchval("SELECT $1::int", 1)  # prepared

        async def transaction() -> None:
            async with connection.transaction():
                await connection.execute("SELECT 2")
                await connection.fetchval("SELECT $1::int", 3)

        # BEGIN, the two statements and COMMIT: asyncpg batches none of them.
        assert await _spent(proxy, transaction) == 4
    finally:
        await connection.close()


async def test_the_proxy_records_what_each_round_trip_ran() -> None:
    server = urlsplit(POSTGRES_SERVER)
    proxy = pg_wire.PgWireProxy(server.hostname or "127.0.0.1", server.port or 5432, record=True)
    proxy.start_in_thread()  # the mode the benchmark uses
    try:
        connection = await asyncpg.connect(_through(proxy.port))
        try:
            before = proxy.snapshot()
            await connection.fetchval("SELECT $1::int + 1", 1)
            await connection.fetchval("SELECT $1::int + 1", 2)
            spent = proxy.snapshot() - before
        finally:
            await connection.close()
    finally:
        proxy.stop_thread()
    assert spent.statements() == [
        "parse: SELECT $1::int + 1",
        "run: SELECT $1::int + 1",
        "run: SELECT $1::int + 1",
    ]
