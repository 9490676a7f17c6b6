"""Times: the one format both doors show, and client times brought to UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """UTC with an explicit offset and a fixed width: 2026-11-24T08:52:00.123456+00:00."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso_sql(expr: str) -> str:
    """`iso` as PostgreSQL writes it (its twin: change both), of a timestamptz expression."""
    return f"""to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def in_utc(moment: datetime) -> datetime:
    """A time a client gave, in UTC (one without an offset is taken as UTC).

    At the ends of the calendar a time may have no UTC equivalent (year 1 at +01:00 is in
    year 0): it is then earlier, or later, than any stored time, and stands as the first,
    or the last, representable one. A bound there filters as it should, not with an error.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return EARLIEST if moment.year == datetime.min.year else LATEST
