"""Tortoise ORM configuration, built from a database URL the caller passes in."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

MODEL_MODULES = ["db.models", "aerich.models"]
APP_LABEL = "models"

_DIALECTS = {"sqlite": "sqlite", "postgres": "postgres", "asyncpg": "postgres"}


def normalise_database_url(url: str) -> str:
    """Accept the spellings other tools use (`postgresql://`) and add safe defaults."""
    url = url.strip()
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://"):
        # Several processes may share one SQLite file: wait for a lock instead of failing.
        base, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        params.setdefault("busy_timeout", "10000")
        # WAL (Tortoise's default journal) with NORMAL sync never corrupts the file; only the
        # last commits before a power cut may be lost. FULL syncs every commit: 40% slower.
        params.setdefault("synchronous", "NORMAL")
        url = f"{base}?{urlencode(params)}"
    return url


def database_dialect(url: str) -> str:
    """`sqlite` or `postgres`; anything else is a ValueError naming the scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        return _DIALECTS[scheme]
    except KeyError:
        raise ValueError(
            f"unsupported database scheme {scheme!r}: use sqlite://PATH or postgres://..."
        ) from None


def tortoise_config(database_url: str, *, timeout: float | None = None) -> dict[str, Any]:
    """The dict `Tortoise.init(config=...)` and aerich expect.

    `timeout` bounds, on PostgreSQL, connecting and each statement (asyncpg's `timeout`
    and `command_timeout`), unless the URL sets them."""
    url = normalise_database_url(database_url)
    if timeout is not None and database_dialect(url) == "postgres":
        base, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        params.setdefault("timeout", str(max(1, round(timeout))))
        params.setdefault("command_timeout", str(timeout))
        url = f"{base}?{urlencode(params)}"
    return {
        "connections": {"default": url},
        "apps": {APP_LABEL: {"models": list(MODEL_MODULES), "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }
