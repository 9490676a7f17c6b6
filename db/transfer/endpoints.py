"""Both ends of a data move on plain drivers (aiosqlite, asyncpg), each turning its column
values into one canonical form and back: UUIDs as text, times as aware UTC datetimes,
JSON as its text (never parsed), booleans as bool."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite
import asyncpg
from tortoise.backends.base.config_generator import expand_db_url

from db.config import database_dialect, normalise_database_url
from db.transfer.tables import Column, Kind, Table

Row = tuple[Any, ...]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(table: Table) -> str:
    return ", ".join(_quote(column.name) for column in table.columns)


# JSON stays text both ways: parsing it (orjson) would turn integers beyond 64 bits into
# floats and refuse numbers such as 1e400, which both databases keep as written.


def _sqlite_in(kind: Kind, value: Any) -> Any:
    """A canonical value from SQLite's storage (Tortoise writes text, 0/1 and JSON text)."""
    if value is None or kind in (Kind.PLAIN, Kind.UUID, Kind.JSON):
        return value
    if kind is Kind.DATETIME:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return bool(value)


def _sqlite_out(kind: Kind, value: Any) -> Any:
    """A canonical value as Tortoise stores it in SQLite (the same text, byte for byte)."""
    if value is None or kind in (Kind.PLAIN, Kind.UUID, Kind.JSON):
        return value
    if kind is Kind.DATETIME:
        return value.astimezone(UTC).isoformat(" ")
    return int(value)


def _postgres_in(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.UUID:
        return str(value)
    return value  # json/jsonb too: asyncpg gives it as text when no codec is set


def _postgres_out(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.UUID:
        return uuid.UUID(value)
    return value  # JSON text: asyncpg's default json/jsonb encoder takes text as it is


def _decoded(
    convert: Callable[[Kind, Any], Any], columns: Sequence[Column], row: Sequence[Any]
) -> Row:
    """One row through `convert`, column by column."""
    return tuple(convert(c.kind, value) for c, value in zip(columns, row, strict=True))


def _pair_columns(table: Table, column: str) -> tuple[Column, Column]:
    """The columns of `read_pairs`' rows: the one column, then the primary key."""
    by_name = {c.name: c for c in table.columns}
    return by_name[column], by_name[table.primary_key]


def _page_sql(
    table: Table, columns: Sequence[Column], where: str, *, limit: str, after: str | None
) -> str:
    """A keyset page query; `limit` and `after` (the last key read, None on the first
    page) are the dialect's placeholders."""
    pk = _quote(table.primary_key)
    conditions = [where] if where else []
    if after is not None:
        conditions.append(f"{pk} > {after}")
    filtered = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {', '.join(_quote(c.name) for c in columns)} FROM {_quote(table.name)}"
        f"{filtered} ORDER BY {pk} LIMIT {limit}"
    )


class Endpoint(Protocol):
    """One database of a move; reads and writes rows of canonical values."""

    dialect: str

    async def schema_version(self) -> str | None: ...
    async def has_table(self, name: str) -> bool: ...
    async def count(self, table: Table) -> int: ...
    def read(self, table: Table, *, batch_size: int) -> AsyncIterator[list[Row]]: ...
    def read_pairs(
        self, table: Table, column: str, *, batch_size: int
    ) -> AsyncIterator[list[Row]]: ...
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


class _KeysetReads:
    """The reads both endpoints make, over each one's own `_pages`."""

    async def read(self, table: Table, *, batch_size: int) -> AsyncIterator[list[Row]]:
        async for page in self._pages(table, table.columns, "", batch_size):
            yield page

    async def read_pairs(
        self, table: Table, column: str, *, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        """(value, key) of every row whose `column` is not NULL, in key order."""
        columns = _pair_columns(table, column)
        where = f"{_quote(column)} IS NOT NULL"
        async for page in self._pages(table, columns, where, batch_size):
            yield page

    def _pages(
        self, table: Table, columns: Sequence[Column], where: str, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        raise NotImplementedError


class SqliteEndpoint(_KeysetReads):
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

    async def has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(list(await self._db.execute_fetchall(sql, (name,))))

    async def count(self, table: Table) -> int:
        rows = list(await self._db.execute_fetchall(f"SELECT count(*) FROM {_quote(table.name)}"))
        return int(rows[0][0])

    async def _pages(
        self, table: Table, columns: Sequence[Column], where: str, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        """`columns` of the rows matching `where`, a batch at a time, by the primary key
        (a keyset: each page starts after the last key, never re-reading what came)."""
        first = _page_sql(table, columns, where, limit="?", after=None)
        after = _page_sql(table, columns, where, limit="?", after="?")
        key_index = [column.name for column in columns].index(table.primary_key)
        last: Any = None
        while True:
            params = (batch_size,) if last is None else (last, batch_size)  # in SQL order
            raw = list(await self._db.execute_fetchall(first if last is None else after, params))
            if not raw:
                return
            last = raw[-1][key_index]
            yield [_decoded(_sqlite_in, columns, row) for row in raw]

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {_quote(table.name)} ({_columns(table)}) VALUES ({marks})"
        encoded = [_decoded(_sqlite_out, table.columns, row) for row in rows]
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


class PostgresEndpoint(_KeysetReads):
    dialect = "postgres"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection
        self._transaction: Any = None

    @classmethod
    async def open(cls, url: str) -> PostgresEndpoint:
        # Tortoise's pool options (minsize, maxsize...) mean nothing to one asyncpg
        # connection: connect with the credentials, plus the options that change what the
        # session sees, as Tortoise's own client turns them into server settings.
        credentials = expand_db_url(url)["credentials"]
        connection = await asyncpg.connect(
            host=credentials.get("host"),
            port=credentials.get("port"),
            user=credentials.get("user"),
            password=credentials.get("password"),
            database=credentials.get("database"),
            ssl=credentials.get("ssl"),
            server_settings=_server_settings(credentials),
        )
        return cls(connection)

    async def schema_version(self) -> str | None:
        if await self._db.fetchval("SELECT to_regclass('aerich')") is None:
            return None
        version = await self._db.fetchval(
            "SELECT version FROM aerich WHERE app = 'models' ORDER BY id DESC LIMIT 1"
        )
        return _version_prefix(version)

    async def has_table(self, name: str) -> bool:
        # to_regclass follows the search_path, as the copy's unqualified names do.
        return await self._db.fetchval("SELECT to_regclass($1)", _quote(name)) is not None

    async def count(self, table: Table) -> int:
        return int(await self._db.fetchval(f"SELECT count(*) FROM {_quote(table.name)}"))

    async def _pages(
        self, table: Table, columns: Sequence[Column], where: str, batch_size: int
    ) -> AsyncIterator[list[Row]]:
        """`columns` of the rows matching `where`, a batch at a time, by the primary key
        (a keyset: each page starts after the last key, never re-reading what came)."""
        first = _page_sql(table, columns, where, limit="$1", after=None)
        after = _page_sql(table, columns, where, limit="$1", after="$2")
        key_index = [column.name for column in columns].index(table.primary_key)
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
            yield [_decoded(_postgres_in, columns, tuple(row.values())) for row in raw]

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        marks = ", ".join(f"${number}" for number in range(1, len(table.columns) + 1))
        sql = f"INSERT INTO {_quote(table.name)} ({_columns(table)}) VALUES ({marks})"
        encoded = [_decoded(_postgres_out, table.columns, row) for row in rows]
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


def _server_settings(credentials: dict[str, Any]) -> dict[str, str]:
    """The session settings a Tortoise URL asks for (`?schema=` is the search_path),
    so the copy reads and writes the tables the gateway itself uses."""
    settings = {str(k): str(v) for k, v in (credentials.get("server_settings") or {}).items()}
    if credentials.get("schema"):
        settings["search_path"] = str(credentials["schema"])
    if credentials.get("application_name"):
        settings["application_name"] = str(credentials["application_name"])
    return settings


async def open_endpoint(url: str) -> Endpoint:
    """The endpoint for a database URL (sqlite://PATH or postgres://...)."""
    url = normalise_database_url(url)
    if database_dialect(url) == "postgres":
        return await PostgresEndpoint.open(url)
    return await SqliteEndpoint.open(url)
