"""Python logging for the process (the audit log lives in the database, see db.services.logs).

Every line carries the id of the request it was written for (`RequestIdFilter`); with
LOG_FORMAT=json each line is one JSON object: time, level, logger, message, request_id
and the record's extra fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from db.request_context import REQUEST_ID

_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"
# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "request_tag",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served (None outside one).

    A filter of the root handler; records made by `_stamped_records` have it already, so
    a test's own handler (pytest's caplog) sees it too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


def _stamp_records() -> None:
    """Make every LogRecord carry `request_id` from the moment it is made (once)."""
    made = logging.getLogRecordFactory()
    if getattr(made, "_gateway", False):
        return

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    stamped._gateway = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(stamped)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, extra fields included; never raises on odd values."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # what orjson cannot write (integers past 64 bits): as text
            return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str, *, log_format: str = "text") -> None:
    """Configure the root logger's one handler; later calls change level and format."""
    _stamp_records()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_gateway", False)), None)
    if handler is None:
        # stdout, where a process supervisor or container runtime collects it; only the
        # server configures logging (the CLI's commands keep stdout for their JSON).
        handler = logging.StreamHandler(sys.stdout)
        handler.addFilter(RequestIdFilter())
        handler._gateway = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_FORMAT))
    root.setLevel(level.upper())
    # The ORM and drivers log every SQL statement with its parameters (message contents)
    # at debug level, and the ORM says "started"/"shutdown" each time it connects (twice
    # before the server even starts): warnings and up only.
    for noisy in ("tortoise", "aiosqlite", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
