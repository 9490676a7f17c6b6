"""Keyset pagination over (created_at, id), newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from tortoise.expressions import Q


class SortKey(NamedTuple):
    """Where a newest-first list stopped: the last item's time and id."""

    created_at: datetime
    id: str | int


def older_than(key: SortKey) -> Q:
    """Rows after `key` in (created_at DESC, id DESC) order."""
    # SQLite compares stored times as text: the bound must be in UTC like the rows.
    moment = key.created_at.astimezone(UTC)
    return Q(created_at__lt=moment) | Q(created_at=moment, id__lt=key.id)
