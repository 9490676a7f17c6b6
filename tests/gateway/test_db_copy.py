"""`chat-gateway db copy`: a populated SQLite database goes to PostgreSQL and back with every
row equal; a non-empty target is refused; the counts are verified. Whatever TEST_DATABASE
says, the move runs between both dialects."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db import migrate, scratch
from db.config import APP_LABEL
from db.transfer import copied_tables
from db.transfer.copy import newest_migration
from db.transfer.tables import Kind, Table
from tests.conftest import BACKEND, POSTGRES_SERVER
from tests.servers import REPO_ROOT, child_env, run_cli

LOGS = 2_345  # several batches of --batch-size
BATCH = "500"
# In the order copied (foreign keys first). 81 messages: 80 in the histories and one
# replaced reply (a variant, no seq); 2 config versions: echo's first and one made.
EXPECTED = {
    "users": 3,
    "api_keys": 3,
    "model_configs": 2,
    "model_config_versions": 2,
    "chat_sessions": 2,
    "messages": 81,
    "message_feedback": 1,
    "usage_records": 2,
    "logs": LOGS,
}

Rows = dict[str, list[tuple[Any, ...]]]

# Beyond 64 bits and beyond a double: parsed and re-encoded, JSON would lose both.
BIG_JSON = '{"n": 123456789012345678901234567890, "huge": 1e400}'


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
    with sqlite3.connect(folder / "source.sqlite3") as connection:
        connection.execute(
            "UPDATE messages SET metadata = ? WHERE id = (SELECT min(id) FROM messages)",
            (BIG_JSON,),
        )
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
    (PostgreSQL's jsonb keeps no key order; numbers exact), 0/1 for booleans."""
    if value is None:
        return None
    if kind is Kind.JSON:
        return _exact_json(value)
    if kind is Kind.DATETIME and not isinstance(value, str):
        return value.astimezone(UTC).isoformat(" ")
    if kind is Kind.UUID:
        return str(value)
    if kind is Kind.BOOL:
        return int(value)
    return value


def _exact_json(text: str) -> Any:
    """JSON with every number exact (jsonb writes 1e400 as its 401 digits)."""
    return json.loads(text, parse_float=Decimal)


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


def test_json_text_crosses_both_dialects_unchanged_in_value(round_trip: RoundTrip) -> None:
    async def in_postgres() -> tuple[str, str]:
        connection = await asyncpg.connect(_asyncpg_url(round_trip.postgres))
        try:
            row = await connection.fetchrow(
                "SELECT metadata->>'n' AS n, metadata->>'huge' AS huge FROM messages "
                "WHERE metadata ? 'huge'"
            )
            return row["n"], row["huge"]
        finally:
            await connection.close()

    with sqlite3.connect(round_trip.back.split("://", 1)[1]) as connection:
        (back,) = connection.execute(
            "SELECT metadata FROM messages WHERE id = (SELECT min(id) FROM messages)"
        ).fetchone()

    number, huge = asyncio.run(in_postgres())
    assert number == "123456789012345678901234567890"
    assert Decimal(huge) == Decimal("1e400")
    assert _exact_json(back) == {"n": 123456789012345678901234567890, "huge": Decimal("1e400")}


def test_migrations_are_ordered_by_number_not_by_text() -> None:
    names = ["__init__.py", "9_20260101_nine.py", "10_20260102_ten.py", "2_20250101_two.py"]

    assert newest_migration(names) == (10, "10_20260102_ten.py")
    with pytest.raises(ValueError, match="no numbered migration"):
        newest_migration(["__init__.py"])


def _sqlite_schema(path: Path) -> tuple[list[Any], list[Any]]:
    """The target's table definitions and aerich rows (what a migration would change)."""
    with sqlite3.connect(path) as connection:
        tables = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        aerich = connection.execute("SELECT * FROM aerich ORDER BY id").fetchall()
    return tables, aerich


# Applies the migrations of a folder, in a child process (aerich keeps global state).
MIGRATE_FROM = """
import asyncio, sys
from aerich import Command
from db.config import APP_LABEL, tortoise_config

async def run():
    config = tortoise_config(sys.argv[1])
    async with Command(tortoise_config=config, app=APP_LABEL, location=sys.argv[2]) as command:
        await command.upgrade(run_in_transaction=True)

asyncio.run(run())
"""


def _migrate_to_first(url: str, scratch_folder: Path) -> None:
    """Apply only migration 0: a gateway database from an older release."""
    folder = scratch_folder / "sqlite"
    shutil.copytree(migrate.location("sqlite"), folder)
    for path in (folder / APP_LABEL).glob("*.py"):
        if path.name[0].isdigit() and not path.name.startswith("0_"):
            path.unlink()
    command = [sys.executable, "-c", MIGRATE_FROM, url, str(folder)]
    subprocess.run(command, cwd=REPO_ROOT, env=child_env(), check=True, timeout=60)


def test_a_filled_target_on_an_older_schema_is_refused_before_migrating(
    round_trip: RoundTrip, tmp_path: Path
) -> None:
    path = tmp_path / "live.sqlite3"
    _migrate_to_first(f"sqlite://{path}", tmp_path / "migrations")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO users (id, name, role, created_at) "
            "VALUES ('00000000-0000-0000-0000-000000000001', 'live', 'user', '2026-01-01')"
        )
    before = _sqlite_schema(path)
    assert len(before[1]) == 1  # only migration 0

    refused = run_cli(
        "db",
        "copy",
        "--from",
        round_trip.source,
        "--to",
        f"sqlite://{path}",
        env=child_env(),
        cwd=tmp_path,
    )

    assert refused.returncode == 1, refused.stderr
    assert "the target is not empty: users (1 rows)" in refused.stderr
    assert _sqlite_schema(path) == before


# `chat-gateway db copy` in a child process (aerich and Tortoise keep global state), with a
# hook that deletes a target row inside the copy's transaction, after `logs` is copied.
LOSING_A_ROW = """
import sys
from db.transfer import copy
from gateway.cli.common import main

copy_table = copy._copy_table

async def losing_a_row(source, target, table, *args):
    copied = await copy_table(source, target, table, *args)
    if table.name == "logs":
        await target._db.execute("DELETE FROM logs WHERE id = 1")
    return copied

copy._copy_table = losing_a_row
main(["db", "copy", "--from", sys.argv[1], "--to", sys.argv[2]])
"""


def test_a_count_mismatch_rolls_back_and_leaves_the_target_empty(
    round_trip: RoundTrip, tmp_path: Path
) -> None:
    if BACKEND == "postgres":
        target = asyncio.run(scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test"))
    else:
        target = f"sqlite://{tmp_path / 'target.sqlite3'}"
    try:
        result = subprocess.run(
            [sys.executable, "-c", LOSING_A_ROW, round_trip.source, target],
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        rows = postgres_rows(target) if BACKEND == "postgres" else sqlite_rows(target)
    finally:
        if BACKEND == "postgres":
            asyncio.run(scratch.drop_postgres(POSTGRES_SERVER, target))

    assert result.returncode == 1, result.stderr
    assert f"logs {LOGS} -> {LOGS - 1} DIFFERS" in " ".join(result.stdout.split())
    assert "nothing was committed" in result.stderr
    assert "Traceback" not in result.stderr
    assert {table: len(found) for table, found in rows.items()} == dict.fromkeys(EXPECTED, 0)


def test_a_postgres_schema_option_is_the_search_path(round_trip: RoundTrip, tmp_path: Path) -> None:
    database = asyncio.run(scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test"))

    async def create_schema() -> None:
        connection = await asyncpg.connect(_asyncpg_url(database))
        try:
            await connection.execute("CREATE SCHEMA gateway")
        finally:
            await connection.close()

    async def users_in(schema: str) -> int | None:
        connection = await asyncpg.connect(_asyncpg_url(database))
        try:
            if await connection.fetchval("SELECT to_regclass($1)", f"{schema}.users") is None:
                return None
            return int(await connection.fetchval(f"SELECT count(*) FROM {schema}.users"))
        finally:
            await connection.close()

    try:
        asyncio.run(create_schema())
        copied = run_cli(
            "db",
            "copy",
            "--from",
            round_trip.source,
            "--to",
            f"{database}?schema=gateway",
            env=child_env(),
            cwd=tmp_path,
        )
        assert copied.returncode == 0, copied.stderr
        assert asyncio.run(users_in("gateway")) == EXPECTED["users"]
        assert asyncio.run(users_in("public")) is None
    finally:
        asyncio.run(scratch.drop_postgres(POSTGRES_SERVER, database))


def test_self_references_are_set_in_batches_from_the_snapshot(
    round_trip: RoundTrip, tmp_path: Path
) -> None:
    target = f"sqlite://{tmp_path / 'small_batches.sqlite3'}"

    def replies(url: str) -> list[tuple[str, str]]:
        with sqlite3.connect(url.split("://", 1)[1]) as connection:
            sql = "SELECT id, reply_to_id FROM messages WHERE reply_to_id IS NOT NULL ORDER BY id"
            return connection.execute(sql).fetchall()

    # Batches of 7: the replies' links are read and written over several pages.
    copied = run_cli(
        "db",
        "copy",
        "--from",
        round_trip.source,
        "--to",
        target,
        "--batch-size",
        "7",
        env=child_env(),
        cwd=tmp_path,
    )

    assert copied.returncode == 0, copied.stderr
    expected = replies(round_trip.source)
    assert len(expected) > 2 * 7
    assert replies(target) == expected
