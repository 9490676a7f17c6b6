"""`chat-gateway db copy`: a populated SQLite database goes to PostgreSQL and back with every
row equal; a non-empty target is refused; the counts are verified. Whatever TEST_DATABASE
says, the move runs between both dialects."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from db import scratch
from db.transfer import copied_tables
from db.transfer.tables import Kind, Table
from tests.conftest import POSTGRES_SERVER
from tests.servers import REPO_ROOT, child_env, run_cli

LOGS = 2_345  # several batches of --batch-size
BATCH = "500"
EXPECTED = {
    "users": 3,
    "api_keys": 3,
    "model_configs": 2,
    "chat_sessions": 2,
    "messages": 80,
    "logs": LOGS,
}

Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class RoundTrip:
    source: str
    postgres: str
    back: str
    there: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]


def _asyncpg_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoundTrip]:
    folder = tmp_path_factory.mktemp("copy")
    source = f"sqlite://{folder / 'source.sqlite3'}"
    back = f"sqlite://{folder / 'back.sqlite3'}"
    populate = [sys.executable, "-m", "tests.gateway.populate", source, str(LOGS)]
    subprocess.run(populate, cwd=REPO_ROOT, env=child_env(), check=True, timeout=120)
    postgres = asyncio.run(scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test"))
    try:
        env = child_env()
        there = run_cli(
            "db",
            "copy",
            "--from",
            source,
            "--to",
            postgres,
            "--batch-size",
            BATCH,
            env=env,
            cwd=folder,
        )
        again = run_cli(
            "db",
            "copy",
            "--from",
            postgres,
            "--to",
            back,
            "--batch-size",
            BATCH,
            env=env,
            cwd=folder,
        )
        yield RoundTrip(source=source, postgres=postgres, back=back, there=there, again=again)
    finally:
        asyncio.run(scratch.drop_postgres(POSTGRES_SERVER, postgres))


def _normal(kind: Kind, value: Any) -> Any:
    """A value in one comparable form: SQLite's text for times and UUIDs, parsed JSON
    (PostgreSQL's jsonb keeps no key order), 0/1 for booleans."""
    if value is None:
        return None
    if kind is Kind.JSON:
        return orjson.loads(value)
    if kind is Kind.DATETIME and not isinstance(value, str):
        return value.astimezone(UTC).isoformat(" ")
    if kind is Kind.UUID:
        return str(value)
    if kind is Kind.BOOL:
        return int(value)
    return value


def _select(table: Table) -> str:
    columns = ", ".join(f'"{column.name}"' for column in table.columns)
    return f'SELECT {columns} FROM "{table.name}" ORDER BY "{table.primary_key}"'


def _normalised(table: Table, rows: list[Any]) -> list[tuple[Any, ...]]:
    kinds = [column.kind for column in table.columns]
    return [tuple(_normal(k, v) for k, v in zip(kinds, row, strict=True)) for row in rows]


def sqlite_rows(url: str) -> Rows:
    with sqlite3.connect(url.split("://", 1)[1]) as connection:
        return {
            table.name: _normalised(table, connection.execute(_select(table)).fetchall())
            for table in copied_tables()
        }


def postgres_rows(url: str) -> Rows:
    async def read() -> Rows:
        connection = await asyncpg.connect(_asyncpg_url(url))
        try:
            result = {}
            for table in copied_tables():
                rows = [tuple(row.values()) for row in await connection.fetch(_select(table))]
                # Both sides sorted by the key as text: the databases order uuids apart.
                result[table.name] = sorted(_normalised(table, rows), key=lambda r: str(r[0]))
            return result
        finally:
            await connection.close()

    return asyncio.run(read())


def test_both_copies_succeed_and_verify_every_table(round_trip: RoundTrip) -> None:
    for run in (round_trip.there, round_trip.again):
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert [line.split()[0] for line in lines] == list(EXPECTED)
        for line in lines:
            table, source, arrow, target, verdict = line.split()
            assert (int(source), arrow, int(target), verdict) == (
                EXPECTED[table],
                "->",
                EXPECTED[table],
                "ok",
            )


def test_every_row_survives_the_round_trip(round_trip: RoundTrip) -> None:
    original = sqlite_rows(round_trip.source)

    assert {table: len(rows) for table, rows in original.items()} == EXPECTED
    assert sqlite_rows(round_trip.back) == original
    in_postgres = postgres_rows(round_trip.postgres)
    for table, rows in original.items():
        assert in_postgres[table] == sorted(rows, key=lambda r: str(r[0])), table


def test_sqlite_text_comes_back_byte_for_byte_but_json_key_order(round_trip: RoundTrip) -> None:
    def raw(url: str) -> list[Any]:
        with sqlite3.connect(url.split("://", 1)[1]) as connection:
            return connection.execute('SELECT * FROM "users" ORDER BY id').fetchall()

    assert raw(round_trip.back) == raw(round_trip.source)


def test_ephemeral_tables_are_not_copied(round_trip: RoundTrip) -> None:
    names = {table.name for table in copied_tables()}
    assert names.isdisjoint({"rate_windows", "reply_streams", "reply_chunks", "event_payloads"})
    with sqlite3.connect(round_trip.back.split("://", 1)[1]) as connection:
        assert connection.execute("SELECT count(*) FROM rate_windows").fetchone() == (0,)


def test_postgres_sequences_continue_after_the_copied_ids(round_trip: RoundTrip) -> None:
    async def next_id() -> int:
        connection = await asyncpg.connect(_asyncpg_url(round_trip.postgres))
        try:
            value = await connection.fetchval(
                "INSERT INTO logs (level, event, message, created_at) "
                "VALUES ('info', 'x', 'y', now()) RETURNING id"
            )
            await connection.execute("DELETE FROM logs WHERE id = $1", value)
            return int(value)
        finally:
            await connection.close()

    assert asyncio.run(next_id()) == LOGS + 1


def test_a_non_empty_target_is_refused_and_left_alone(
    round_trip: RoundTrip, tmp_path: Path
) -> None:
    before = sqlite_rows(round_trip.back)

    refused = run_cli(
        "db",
        "copy",
        "--from",
        round_trip.postgres,
        "--to",
        round_trip.back,
        env=child_env(),
        cwd=tmp_path,
    )

    assert refused.returncode == 1
    assert "the target is not empty: users (3 rows)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sqlite_rows(round_trip.back) == before
