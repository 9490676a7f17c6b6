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
