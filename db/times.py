"""Times: the one format both doors show, and client times brought to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from db.errors import Invalid


def iso(moment: datetime) -> str:
    """UTC with an explicit offset and a fixed width: 2026-11-24T08:52:00.123456+00:00."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def in_utc(moment: datetime, *, field: str) -> datetime:
    """A time a client gave, in UTC (one without an offset is taken as UTC).

    Near the ends of the calendar (year 1 at +01:00) there is no UTC equivalent: that is
    the client's mistake, named, not an overflow inside a query.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Invalid("is outside the range of supported times", field=field) from None
