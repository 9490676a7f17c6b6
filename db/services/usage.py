"""Usage reports: the replies asked of models, added up per user, model config and UTC day.

Each reply is counted once, by the write that ends it (db/services/turn_store.py): a row
of `usage_records` for a stored or cancelled reply, and one marked `failed` for a reply
the model did not give. A report adds those rows up in ONE statement that reads them by
time (and user or config) through the table's indexes, never the messages: a month of
traffic costs one indexed query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import connections

from db.errors import Forbidden, Invalid
from db.identity import Caller
from db.services.ids import is_uuid
from db.sql import markers
from db.times import in_utc


class UsageGroup(StrEnum):
    """What one row of a report adds up; groups combine (one row per user and day...)."""

    USER = "user"
    MODEL_CONFIG = "model_config"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One group's usage; a field of a group the report was not asked for is None."""

    user_id: str | None
    model_config_id: str | None
    day: str | None  # YYYY-MM-DD, UTC
    replies: int  # replies the model gave, stored whole or cancelled part way
    failed_replies: int  # replies the model did not give (nothing stored)
    prompt_tokens: int
    completion_tokens: int
    average_latency_ms: float | None  # over `replies` that have a latency; None: none has


async def report(
    *,
    caller: Caller,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    user_id: str | None = None,
    model_config_id: str | None = None,
    group_by: Sequence[UsageGroup] = (UsageGroup.USER,),
) -> list[UsageRow]:
    """Usage from `start_time` (inclusive) to `end_time` (exclusive), one row per group,
    ordered by day, user, then config; with no group, one row of totals (even of nothing).
    Users see their own usage; admins anyone's (`user_id`) or everyone's (none)."""
    start = in_utc(start_time) if start_time is not None else None
    end = in_utc(end_time) if end_time is not None else None
    if start is not None and end is not None and start > end:
        raise Invalid("must not be after end_time", field="start_time")
    owner = _owner(caller, user_id)
    groups = frozenset(group_by)
    # An id no row can hold matches nothing; it must not reach PostgreSQL, which would
    # refuse it as a uuid while SQLite simply finds no row.
    if (owner is not None and not is_uuid(owner)) or (
        model_config_id is not None and not is_uuid(model_config_id)
    ):
        return [] if groups else [_row({}, groups)]
    postgres = connections.get("default").capabilities.dialect == "postgres"
    statement, values = _statement(groups, start, end, owner, model_config_id, postgres=postgres)
    rows = await connections.get("default").execute_query_dict(statement, values)
    return [_row(row, groups) for row in rows]


def _owner(caller: Caller, user_id: str | None) -> str | None:
    """Whose usage the caller reads: their own, or for an admin anyone's (`user_id`) or,
    with None, everyone's. Another user's is refused by name, as for session listings
    (sessions.listed_owner): a NOT_FOUND would claim they used nothing."""
    if user_id is None:
        return None if caller.is_admin else caller.user_id
    if user_id != caller.user_id and not caller.is_admin:
        raise Forbidden("only admins may read another user's usage", actor_id=caller.user_id)
    return user_id


# The UTC day of a stored time. PostgreSQL stores timestamptz: named in UTC whatever the
# session's time zone. SQLite stores the text Tortoise's adapter writes, isoformat(" ")
# with the offset the time was given in ("2026-11-24 08:52:00.123456+00:00"); date()
# reads that offset and answers the UTC date.
_DAY = {
    True: "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    False: "date(created_at)",
}
# Columns of each group, in the order rows are sorted: by day, then user, then config.
_GROUP_ORDER = (UsageGroup.DAY, UsageGroup.USER, UsageGroup.MODEL_CONFIG)
_COLUMN = {UsageGroup.USER: "user_id", UsageGroup.MODEL_CONFIG: "model_config_id"}


def _statement(
    groups: frozenset[UsageGroup],
    start: datetime | None,
    end: datetime | None,
    owner: str | None,
    model_config_id: str | None,
    *,
    postgres: bool,
) -> tuple[str, list[Any]]:
    """The report's one statement and its values. Every bound is a plain comparison of
    an indexed column with a value, so the planner can range-scan (created_at),
    (user_id, created_at) or (model_config_id, created_at). On SQLite times compare as
    text, all stored in UTC by the app (`in_utc` brings a bound there too)."""
    conditions: list[str] = []
    values: list[Any] = []
    for column, operator, value in (
        ("user_id", "=", owner),
        ("model_config_id", "=", model_config_id),
        ("created_at", ">=", start),
        ("created_at", "<", end),
    ):
        if value is not None:
            values.append(value)
            conditions.append(f"{column} {operator} {markers(len(values))[-1]}")
    # (expression, name) of each group's key, in sort order.
    keys = [
        (_DAY[postgres], "day") if group is UsageGroup.DAY else (_COLUMN[group], _COLUMN[group])
        for group in _GROUP_ORDER
        if group in groups
    ]
    expressions = [expression for expression, _ in keys]
    statement = (
        "SELECT "
        + "".join(f"{expression} AS {name}, " for expression, name in keys)
        + "COALESCE(SUM(CASE WHEN failed THEN 0 ELSE 1 END), 0) AS replies,"
        " COALESCE(SUM(CASE WHEN failed THEN 1 ELSE 0 END), 0) AS failed_replies,"
        " COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
        " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
        # A failure's time is how long it took to fail, not to reply.
        " AVG(CASE WHEN failed THEN NULL ELSE latency_ms END) AS average_latency_ms"
        " FROM usage_records"
    )
    if conditions:
        statement += " WHERE " + " AND ".join(conditions)
    if expressions:
        statement += " GROUP BY " + ", ".join(expressions)
        statement += " ORDER BY " + ", ".join(expressions)
    return statement, values


def _row(row: Mapping[str, Any], groups: frozenset[UsageGroup]) -> UsageRow:
    def key(name: str, group: UsageGroup) -> str | None:
        # PostgreSQL answers uuid columns as UUID objects, SQLite as text.
        return str(row[name]) if group in groups else None

    latency = row.get("average_latency_ms")
    return UsageRow(
        user_id=key("user_id", UsageGroup.USER),
        model_config_id=key("model_config_id", UsageGroup.MODEL_CONFIG),
        day=key("day", UsageGroup.DAY),
        replies=int(row.get("replies") or 0),
        failed_replies=int(row.get("failed_replies") or 0),
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        average_latency_ms=None if latency is None else float(latency),
    )
