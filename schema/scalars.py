"""DateTime as both doors show it (ISO 8601, UTC, explicit offset); JSON is strawberry's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.scalar import ScalarDefinition

from db.times import iso


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string")
    try:
        # A time without an offset stays so: the service decides what it means (UTC).
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None


SCALAR_MAP: dict[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="ISO 8601 in UTC with an explicit offset: 2026-11-24T08:52:00.000000+00:00",
        serialize=iso,
        parse_value=_parse_datetime,
    )
}
