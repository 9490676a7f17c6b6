"""The one time format both doors show."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """UTC with an explicit offset and a fixed width: 2026-11-24T08:52:00.123456+00:00."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
