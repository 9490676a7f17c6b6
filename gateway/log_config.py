"""Python logging for the process (the audit log lives in the database, see db.services.logs)."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Configure the root logger once; later calls only change the level."""
    root = logging.getLogger()
    if not any(getattr(handler, "_gateway", False) for handler in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._gateway = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The ORM and drivers log every SQL statement with its parameters (message contents)
    # at debug level: keep them at INFO even when the service itself is debugged.
    for noisy in ("tortoise", "aiosqlite", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
