"""The process's `Observer` (db.ports): what the service layer reports as it works.

The gateway installs one (Prometheus metrics) at start-up; until then, and in the CLI and
tests that install none, reports go nowhere.
"""

from __future__ import annotations

from db.ports import Observer, ReplyReport


class _Nobody:
    """Drops every report."""

    def reply_finished(self, report: ReplyReport) -> None:
        return None

    def log_written(self, *, level: str) -> None:
        return None


_observer: Observer = _Nobody()


def install(observer: Observer | None) -> None:
    """Send reports to `observer` from now on (None: to nobody)."""
    global _observer
    _observer = observer if observer is not None else _Nobody()


def observer() -> Observer:
    """The installed observer (never None)."""
    return _observer
