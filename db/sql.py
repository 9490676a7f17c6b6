"""Statements written by hand, for both databases: their parameter markers."""

from __future__ import annotations

from tortoise import connections


def markers(count: int) -> tuple[str, ...]:
    """`count` parameter markers of the default connection's database, each usable more
    than once in a statement: `$1, $2...` on PostgreSQL, `?1, ?2...` on SQLite."""
    sign = "$" if connections.get("default").capabilities.dialect == "postgres" else "?"
    return tuple(f"{sign}{number}" for number in range(1, count + 1))
