"""Keyset pagination over (created_at, id), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tortoise.expressions import Q


class SortKey(NamedTuple):
    """Where a newest-first list stopped: the last item's time and id."""

    created_at: datetime
    id: str | int


def older_than(key: SortKey) -> Q:
    """Rows after `key` in (created_at DESC, id DESC) order."""
    return Q(created_at__lt=key.created_at) | Q(created_at=key.created_at, id__lt=key.id)
