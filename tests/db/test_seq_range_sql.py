"""history_windows.seq_range_sql is seq_range's twin: the same window for every request,
on PostgreSQL (where the compiled GraphQL path uses it), over a grid of requests that
covers each edge (empty sessions, sizes 0 and beyond the session, cursors before, inside,
and past it, negative and far ones)."""

from __future__ import annotations

import itertools

import pytest
from tortoise import connections

from db.services.history_windows import seq_range, seq_range_sql
from db.services.pagination import Slice
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the twin is PostgreSQL's")

LAST_SEQS = (0, 1, 7, 30)
SIZES = (0, 1, 3, 30, 100)
CURSORS = (None, -5, 0, 1, 4, 7, 29, 30, 31, 2**40)


async def test_the_sql_twin_cuts_every_window_as_seq_range(app: object) -> None:
    sql = (
        "SELECT low, high, has_next, has_previous FROM "
        + seq_range_sql(
            last_seq="$1::bigint",
            size="$2::bigint",
            backward="$3::boolean",
            after="$4::bigint",
            before="$5::bigint",
        )
        + " r"
    )
    client = connections.get("default")
    different = []
    async with client.acquire_connection() as connection:
        statement = await connection.prepare(sql)
        for last_seq, size, backward, after, before in itertools.product(
            LAST_SEQS, SIZES, (False, True), CURSORS, CURSORS
        ):
            expected = seq_range(
                last_seq=last_seq,
                page=Slice(size=size, backward=backward),
                after=after,
                before=before,
            )
            row = await statement.fetchrow(last_seq, size, backward, after, before)
            got = (row["low"], row["high"], row["has_next"], row["has_previous"])
            wanted = (expected.low, expected.high, expected.has_next, expected.has_previous)
            if got != wanted:
                different.append(((last_seq, size, backward, after, before), got, wanted))
    assert different == []
