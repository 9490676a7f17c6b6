"""Keyset pagination over (created_at, id), newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from db.services.pagination import Slice, Window

M = TypeVar("M", bound=Model)


class SortKey(NamedTuple):
    """Where a newest-first list stopped: the last item's time and id."""

    created_at: datetime
    id: str | int


def older_than(key: SortKey) -> Q:
    """Rows after `key` in (created_at DESC, id DESC) order."""
    # SQLite compares stored times as text: the bound must be in UTC like the rows.
    moment = key.created_at.astimezone(UTC)
    return Q(created_at__lt=moment) | Q(created_at=moment, id__lt=key.id)


def newest_first_sql(
    *, table: str, alias: str, condition: str, after: tuple[str, str], size: str
) -> str:
    """`newest_first` as SQL (its twin: change both): the rows of `table` (as `alias`)
    that `condition` keeps, newest first, after the sort key `after` (SQL expressions of
    a time and an id; with no cursor, a key past every row keeps the condition whole
    and the index usable), `size` + 1 of them, numbered from 1 in `rn`."""
    order = f"{alias}.created_at DESC, {alias}.id DESC"
    return f"""(SELECT {alias}.*, row_number() OVER (ORDER BY {order}) AS rn
        FROM {table} {alias}
        WHERE {condition} AND ({alias}.created_at, {alias}.id) < ({after[0]}, {after[1]})
        ORDER BY {order} LIMIT {size} + 1)"""


async def newest_first(
    query: QuerySet[M], *, page: Slice, after: SortKey | None = None
) -> Window[M]:
    """The rows of `query` newest first, `page.size` of them after `after` (one more is
    read to know whether more follow)."""
    if after is not None:
        query = query.filter(older_than(after))
    rows = list(await query.order_by("-created_at", "-id").limit(page.size + 1))
    return Window(
        items=rows[: page.size], has_next=len(rows) > page.size, has_previous=after is not None
    )
