"""Relay windows over a session's messages, by keyset on the per-session sequence.

Messages of a session are numbered 1..last_seq without gaps (numbers are handed out in
the same transaction as the insert, and messages are never deleted), so a window is a
range of sequence numbers: an index range scan that costs the same deep in a long
session as on its first page, and many sessions' windows fit in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import Q

from db.models import ChatSession, Message
from db.services.pagination import Slice, Window


@dataclass(frozen=True, slots=True)
class SeqRange:
    low: int
    high: int
    has_next: bool
    has_previous: bool


def seq_range(
    *, last_seq: int, page: Slice, after: int | None = None, before: int | None = None
) -> SeqRange:
    """The sequence numbers a window covers (empty when low > high)."""
    floor = max(after or 0, 0) + 1
    ceiling = min(before - 1 if before is not None else last_seq, last_seq)
    if page.backward:
        high = ceiling
        low = max(high - page.size + 1, floor)
        return SeqRange(low, high, has_next=high < last_seq, has_previous=low > floor)
    low = floor
    high = min(low + page.size - 1, ceiling)
    return SeqRange(low, high, has_next=high < ceiling, has_previous=low > 1)


def seq_range_sql(*, last_seq: str, size: str, backward: str, after: str, before: str) -> str:
    """`seq_range` as SQL (its twin: change both), for a statement that pages many
    sessions at once: a derived table of one row (low, high, has_next, has_previous) from
    SQL expressions of bigint values (`after`, `before` may be NULL)."""
    # Inner aliases that no caller's expression can name.
    return f"""(SELECT _seq_cut.low, _seq_cut.high,
        CASE WHEN {backward} THEN _seq_cut.high < {last_seq}
             ELSE _seq_cut.high < _seq_cut.ceiling END AS has_next,
        CASE WHEN {backward} THEN _seq_cut.low > _seq_cut.floor
             ELSE _seq_cut.low > 1 END AS has_previous
      FROM (SELECT _seq_bounds.floor, _seq_bounds.ceiling,
          CASE WHEN {backward} THEN greatest(_seq_bounds.ceiling - {size} + 1, _seq_bounds.floor)
               ELSE _seq_bounds.floor END AS low,
          CASE WHEN {backward} THEN _seq_bounds.ceiling
               ELSE least(_seq_bounds.floor + {size} - 1, _seq_bounds.ceiling) END AS high
        FROM (SELECT greatest(coalesce({after}, 0), 0) + 1 AS floor,
                     least(coalesce({before} - 1, {last_seq}), {last_seq}) AS ceiling)
          _seq_bounds) _seq_cut)"""


async def windows(
    sessions: Sequence[ChatSession],
    *,
    page: Slice,
    after: int | None = None,
    before: int | None = None,
) -> dict[str, Window[Message]]:
    """The same window of each session's messages, in ONE statement whatever their number."""
    ranges = {
        str(session.id): seq_range(last_seq=session.last_seq, page=page, after=after, before=before)
        for session in sessions
    }
    wanted = [(sid, r) for sid, r in ranges.items() if r.low <= r.high]
    rows: list[Message] = []
    if wanted:
        condition = Q(
            *(Q(session_id=sid, seq__gte=r.low, seq__lte=r.high) for sid, r in wanted),
            join_type=Q.OR,
        )
        rows = list(await Message.filter(condition).order_by("session_id", "seq"))
    grouped: dict[str, list[Message]] = {sid: [] for sid in ranges}
    for row in rows:
        grouped[str(row.session_id)].append(row)
    return {
        sid: Window(items=grouped[sid], has_next=r.has_next, has_previous=r.has_previous)
        for sid, r in ranges.items()
    }
