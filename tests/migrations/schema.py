"""A database's schema read straight from its catalog (no ORM), comparable across databases."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import asyncpg

from db.config import database_dialect


@dataclass
class Table:
    # column -> (type, nullable, default)
    columns: dict[str, tuple[str, bool, str | None]] = field(default_factory=dict)
    # (unique, columns) of every index and unique constraint, primary key included
    indexes: list[tuple[bool, tuple[str, ...]]] = field(default_factory=list)
    # (columns, referenced table, referenced columns, on delete)
    foreign_keys: list[tuple[tuple[str, ...], str, tuple[str, ...], str]] = field(
        default_factory=list
    )


Schema = dict[str, Table]

# What migrations 4 and 5 write by hand, which models cannot describe (so a schema generated
# from the models lacks it): the partial unique index of current replies and the
# full-text search index (PostgreSQL: an expression index; SQLite: an FTS5 table, its
# shadow tables, its key table and triggers), and on PostgreSQL the generated column of
# messages' compacted metadata. `describe` leaves them out; `hand_written` lists the ones a
# database has.
HAND_WRITTEN_INDEXES = ("uid_messages_current_reply", "idx_messages_search")
HAND_WRITTEN_TABLES = ("message_search", "message_search_ids")
HAND_WRITTEN_COLUMNS = (("messages", "metadata_json"),)


def _hand_written_table(name: str) -> bool:
    return name in HAND_WRITTEN_TABLES or name.startswith("message_search_")


async def hand_written(url: str) -> set[str]:
    """The hand-written objects (indexes, tables, triggers, columns as `table.column`) the
    database holds."""
    if database_dialect(url) == "sqlite":
        rows = await fetch(url, "SELECT name FROM sqlite_master")
        columns = await fetch(
            url,
            "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_xinfo(m.name) c "
            "WHERE m.type = 'table'",
        )
    else:
        rows = await fetch(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        columns = await fetch(
            url,
            "SELECT table_name || '.' || column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    names = {name for (name,) in rows}
    wanted = {*HAND_WRITTEN_INDEXES, *HAND_WRITTEN_TABLES}
    found = {name for name in names if name in wanted or name.startswith("messages_search_")}
    hand_columns = {f"{table}.{column}" for table, column in HAND_WRITTEN_COLUMNS}
    return found | {name for (name,) in columns if name in hand_columns}


def _sqlite_path(url: str) -> str:
    return url.split("://", 1)[1].split("?", 1)[0]


def _asyncpg_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def fetch(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of one query, as tuples, on a SQLite or PostgreSQL URL."""
    if database_dialect(url) == "sqlite":
        async with aiosqlite.connect(_sqlite_path(url)) as connection:
            cursor = await connection.execute(sql, args)
            return [tuple(row) for row in await cursor.fetchall()]
    connection = await asyncpg.connect(_asyncpg_url(url))
    try:
        return [tuple(row) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def describe(url: str) -> Schema:
    if database_dialect(url) == "sqlite":
        return await _describe_sqlite(_sqlite_path(url))
    return await _describe_postgres(_asyncpg_url(url))


async def _describe_sqlite(path: str) -> Schema:
    schema: Schema = {}
    async with aiosqlite.connect(path) as db:

        async def rows(sql: str) -> Sequence[Any]:
            return list(await (await db.execute(sql)).fetchall())

        names = await rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        for (name,) in names:
            if _hand_written_table(name):
                continue
            table = schema[name] = Table()
            for _, column, kind, notnull, default, pk in await rows(f'PRAGMA table_info("{name}")'):
                table.columns[column] = (kind.upper(), not (notnull or pk), default)
                if pk:
                    table.indexes.append((True, (column,)))
            for _, index, unique, origin, _ in await rows(f'PRAGMA index_list("{name}")'):
                if origin == "pk" or index in HAND_WRITTEN_INDEXES:
                    continue  # reported above, whether or not SQLite built an index for it
                info = sorted(await rows(f'PRAGMA index_info("{index}")'))
                table.indexes.append((bool(unique), tuple(column for _, _, column in info)))
            by_id: dict[int, list[Any]] = {}
            for fk in await rows(f'PRAGMA foreign_key_list("{name}")'):
                by_id.setdefault(fk[0], []).append(fk)
            for parts in by_id.values():
                parts.sort(key=lambda fk: fk[1])
                table.foreign_keys.append(
                    (
                        tuple(fk[3] for fk in parts),
                        parts[0][2],
                        tuple(fk[4] for fk in parts),
                        parts[0][6],
                    )
                )
    return _sorted(schema)


_INDEX_DEF = re.compile(r"CREATE (UNIQUE )?INDEX .* USING \w+ \((.*)\)")
_FK_DEF = re.compile(r"FOREIGN KEY \((.*)\) REFERENCES (\S+)\((.*)\)(?: ON DELETE (.+))?")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"') for part in text.split(","))


async def _describe_postgres(url: str) -> Schema:
    schema: Schema = {}
    db = await asyncpg.connect(url)
    try:
        for row in await db.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ):
            schema[row["table_name"]] = Table()
        for row in await db.fetch(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns WHERE table_schema = 'public'"
        ):
            if (row["table_name"], row["column_name"]) in HAND_WRITTEN_COLUMNS:
                continue
            size = row["character_maximum_length"]
            kind = row["data_type"] + (f"({size})" if size else "")
            schema[row["table_name"]].columns[row["column_name"]] = (
                kind,
                row["is_nullable"] == "YES",
                row["column_default"],
            )
        for row in await db.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        ):
            if row["indexname"] in HAND_WRITTEN_INDEXES:
                continue
            match = _INDEX_DEF.match(row["indexdef"])
            assert match, row["indexdef"]
            schema[row["tablename"]].indexes.append((bool(match[1]), _names(match[2])))
        for row in await db.fetch(
            "SELECT conrelid::regclass::text AS table_name, "
            "pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ):
            match = _FK_DEF.match(row["definition"])
            assert match, row["definition"]
            schema[row["table_name"].strip('"')].foreign_keys.append(
                (_names(match[1]), match[2].strip('"'), _names(match[3]), match[4] or "NO ACTION")
            )
    finally:
        await db.close()
    return _sorted(schema)


def _sorted(schema: Schema) -> Schema:
    for table in schema.values():
        table.indexes.sort()
        table.foreign_keys.sort()
    return dict(sorted(schema.items()))
