"""Both ends of a data move on plain drivers (aiosqlite, asyncpg), each turning its column
values into one canonical form and back: UUIDs as text, times as aware UTC datetimes,
JSON as Python values, booleans as bool."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite
import asyncpg
import orjson
from tortoise.backends.base.config_generator import expand_db_url

from db.config import database_dialect, normalise_database_url
from db.transfer.tables import Kind, Table

Row = tuple[Any, ...]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(table: Table) -> str:
    return ", ".join(_quote(column.name) for column in table.columns)


def _sqlite_in(kind: Kind, value: Any) -> Any:
    """A canonical value from SQLite's storage (Tortoise writes text, 0/1 and JSON text)."""
    if value is None or kind is Kind.PLAIN or kind is Kind.UUID:
        return value
    if kind is Kind.DATETIME:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if kind is Kind.JSON:
        return orjson.loads(value)
    return bool(value)


def _sqlite_out(kind: Kind, value: Any) -> Any:
    """A canonical value as Tortoise stores it in SQLite (the same text, byte for byte)."""
    if value is None or kind is Kind.PLAIN or kind is Kind.UUID:
        return value
    if kind is Kind.DATETIME:
        return value.astimezone(UTC).isoformat(" ")
    if kind is Kind.JSON:
        return orjson.dumps(value).decode()
    return int(value)


def _postgres_in(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.UUID:
        return str(value)
    if kind is Kind.JSON:
        return orjson.loads(value)  # asyncpg gives json/jsonb as text
    return value


def _postgres_out(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.UUID:
        return uuid.UUID(value)
    if kind is Kind.JSON:
        return orjson.dumps(value).decode()
    return value


def _decoded(convert: Callable[[Kind, Any], Any], table: Table, row: Sequence[Any]) -> Row:
    """One row through `convert`, column by column."""
    return tuple(convert(c.kind, value) for c, value in zip(table.columns, row, strict=True))


class Endpoint(Protocol):
    """One database of a move; reads and writes rows of canonical values."""

    dialect: str

    async def schema_version(self) -> str | None: ...
    async def count(self, table: Table) -> int: ...
    def read(self, table: Table, *, batch_size: int) -> AsyncIterator[list[Row]]: ...
    async def insert(self, table: Table, rows: Sequence[Row]) -> None: ...
    async def set_column(self, table: Table, column: str, pairs: Sequence[Row]) -> None: ...
    async def follow_sequence(self, table: Table) -> None: ...
    async def begin(self, *, read_only: bool) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...


def _version_prefix(version: str | None) -> str | None:
    """A migration's number (`3_2026..._name.py` -> `3`): the two dialects' files share
    numbers, not names."""
    return version.split("_", 1)[0] if version else None


class SqliteEndpoint:
    dialect = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    @classmethod
    async def open(cls, url: str) -> SqliteEndpoint:
        path = url.split("://", 1)[1].split("?", 1)[0]
        if not path or path == ":memory:":
            raise ValueError("db copy needs a SQLite file, not an in-memory database")
        # isolation_level None: the move runs its own BEGIN/COMMIT.
        connection = await aiosqlite.connect(path, isolation_level=None)
        await connection.execute("PRAGMA busy_timeout = 10000")
        return cls(connection)

    async def schema_version(self) -> str | None:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'aerich'"
        if not await self._db.execute_fetchall(sql):
            return None
        rows = list(
            await self._db.execute_fetchall(
                "SELECT version FROM aerich WHERE app = 'models' ORDER BY id DESC LIMIT 1"
            )
        )
        return _version_prefix(rows[0][0]) if rows else None

    async def count(self, table: Table) -> int:
        rows = list(await self._db.execute_fetchall(f"SELECT count(*) FROM {_quote(table.name)}"))
        return int(rows[0][0])

    async def read(self, table: Table, *, batch_size: int) -> AsyncIterator[list[Row]]:
        pk = _quote(table.primary_key)
        first = f"SELECT {_columns(table)} FROM {_quote(table.name)} ORDER BY {pk} LIMIT ?"
        after = first.replace(" ORDER BY", f" WHERE {pk} > ? ORDER BY")
        key_index = [column.name for column in table.columns].index(table.primary_key)
        last: Any = None
        while True:
            params = (batch_size,) if last is None else (last, batch_size)
            raw = list(await self._db.execute_fetchall(first if last is None else after, params))
            if not raw:
                return
            last = raw[-1][key_index]
            yield [_decoded(_sqlite_in, table, row) for row in raw]

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {_quote(table.name)} ({_columns(table)}) VALUES ({marks})"
        encoded = [_decoded(_sqlite_out, table, row) for row in rows]
        await self._db.executemany(sql, encoded)

    async def set_column(self, table: Table, column: str, pairs: Sequence[Row]) -> None:
        kind = next(c.kind for c in table.columns if c.name == column)
        key_kind = next(c.kind for c in table.columns if c.name == table.primary_key)
        sql = (
            f"UPDATE {_quote(table.name)} SET {_quote(column)} = ? "
            f"WHERE {_quote(table.primary_key)} = ?"
        )
        encoded = [(_sqlite_out(kind, value), _sqlite_out(key_kind, key)) for value, key in pairs]
        await self._db.executemany(sql, encoded)

    async def follow_sequence(self, table: Table) -> None:
        """SQLite's AUTOINCREMENT follows explicit ids by itself."""

    async def begin(self, *, read_only: bool) -> None:
        # A read transaction is a snapshot (WAL): a server writing meanwhile changes nothing.
        await self._db.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    async def commit(self) -> None:
        await self._db.execute("COMMIT")

    async def rollback(self) -> None:
        await self._db.execute("ROLLBACK")

    async def close(self) -> None:
        await self._db.close()


class PostgresEndpoint:
    dialect = "postgres"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection
        self._transaction: Any = None

    @classmethod
    async def open(cls, url: str) -> PostgresEndpoint:
        # Tortoise's own URL options (minsize, maxsize...) mean nothing to asyncpg: connect
        # with the credentials alone.
        credentials = expand_db_url(url)["credentials"]
        connection = await asyncpg.connect(
            host=credentials.get("host"),
            port=credentials.get("port"),
            user=credentials.get("user"),
            password=credentials.get("password"),
            database=credentials.get("database"),
            ssl=credentials.get("ssl"),
        )
        return cls(connection)

    async def schema_version(self) -> str | None:
        if await self._db.fetchval("SELECT to_regclass('aerich')") is None:
            return None
        version = await self._db.fetchval(
            "SELECT version FROM aerich WHERE app = 'models' ORDER BY id DESC LIMIT 1"
        )
        return _version_prefix(version)

    async def count(self, table: Table) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {_quote(table.name)}"))

    async def read(self, table: Table, *, batch_size: int) -> AsyncIterator[list[Row]]:
        pk = _quote(table.primary_key)
        first = f"SELECT {_columns(table)} FROM {_quote(table.name)} ORDER BY {pk} LIMIT $1"
        after = first.replace(" ORDER BY", f" WHERE {pk} > $2 ORDER BY")
        key_index = [column.name for column in table.columns].index(table.primary_key)
        last: Any = None
        while True:
            raw = await (
                self._db.fetch(first, batch_size)
                if last is None
                else self._db.fetch(after, batch_size, last)
            )
            if not raw:
                return
            last = raw[-1][key_index]
            yield [_decoded(_postgres_in, table, tuple(row.values())) for row in raw]

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        marks = ", ".join(f"${number}" for number in range(1, len(table.columns) + 1))
        sql = f"INSERT INTO {_quote(table.name)} ({_columns(table)}) VALUES ({marks})"
        encoded = [_decoded(_postgres_out, table, row) for row in rows]
        await self._db.executemany(sql, encoded)

    async def set_column(self, table: Table, column: str, pairs: Sequence[Row]) -> None:
        kind = next(c.kind for c in table.columns if c.name == column)
        key_kind = next(c.kind for c in table.columns if c.name == table.primary_key)
        sql = (
            f"UPDATE {_quote(table.name)} SET {_quote(column)} = $1 "
            f"WHERE {_quote(table.primary_key)} = $2"
        )
        encoded = [
            (_postgres_out(kind, value), _postgres_out(key_kind, key)) for value, key in pairs
        ]
        await self._db.executemany(sql, encoded)

    async def follow_sequence(self, table: Table) -> None:
        """The serial/identity sequence continues after the highest copied id."""
        name, key = _quote(table.name), _quote(table.primary_key)
        await self._db.execute(
            f"SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(max({key}), 1), "
            f"max({key}) IS NOT NULL) FROM {name}",
            name,
            table.primary_key,
        )

    async def begin(self, *, read_only: bool) -> None:
        # The source is read in one snapshot, so rows written meanwhile cannot half appear.
        isolation = "repeatable_read" if read_only else "read_committed"
        self._transaction = self._db.transaction(isolation=isolation, readonly=read_only)
        await self._transaction.start()

    async def commit(self) -> None:
        await self._transaction.commit()

    async def rollback(self) -> None:
        await self._transaction.rollback()

    async def close(self) -> None:
        await self._db.close()


async def open_endpoint(url: str) -> Endpoint:
    """The endpoint for a database URL (sqlite://PATH or postgres://...)."""
    url = normalise_database_url(url)
    if database_dialect(url) == "postgres":
        return await PostgresEndpoint.open(url)
    return await SqliteEndpoint.open(url)
