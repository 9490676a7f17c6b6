"""Tortoise ORM configuration, built from a database URL the caller passes in."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from tortoise.backends.base.config_generator import expand_db_url

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


async def _keep_session(connection: object) -> None:
    """What asyncpg's pool runs on a connection given back, instead of its default reset
    (UNLISTEN, RESET ALL, CLOSE ALL, advisory unlock: a round trip after every query).
    The gateway keeps no session state on pooled connections (its LISTEN has a connection
    of its own); an open transaction is still rolled back by the pool itself."""


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
    connection: str | dict[str, Any] = url
    if database_dialect(url) == "postgres":
        connection = expand_db_url(url)
        connection["credentials"]["reset"] = _keep_session
        # asyncpg closes a connection idle this long, re-arming a timer at every release;
        # the pool is small (Tortoise's 5), so its connections simply stay.
        connection["credentials"].setdefault("max_inactive_connection_lifetime", 0)
    return {
        "connections": {"default": connection},
        "apps": {APP_LABEL: {"models": list(MODEL_MODULES), "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }
