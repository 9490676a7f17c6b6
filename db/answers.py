"""Statements that return a whole answer as one JSON text (PostgreSQL).

The compiled GraphQL path (schema.compiled) writes them; this runs one on a pooled
connection: one round trip when the statement is already prepared on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import connections


async def read_text(sql: str, params: Sequence[object]) -> str | None:
    """The first column of the statement's first row (None for NULL)."""
    client = connections.get("default")
    # Straight from asyncpg's pool once Tortoise has made it: Tortoise's own wrapper adds
    # a loop check and a lock-guarded pool check to every acquire, about 5% of the CPU of
    # a compiled read. Before the pool exists (the first statement), Tortoise makes it.
    pool = getattr(client, "_pool", None)
    acquired = client.acquire_connection() if pool is None else pool.acquire()
    async with acquired as connection:
        text: str | None = await connection.fetchval(sql, *params)
        return text
