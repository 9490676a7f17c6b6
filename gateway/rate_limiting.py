"""The rate limiter of this process, with the store its settings choose."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from db.rate_stores import MemoryStore, PostgresStore, RateStore, RedisStore
from db.services import rate_limits
from gateway.settings import Settings


def store_for(settings: Settings) -> RateStore:
    """Redis when REDIS_URL is set; else PostgreSQL's table; else (SQLite's one process)
    memory."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, prefix=settings.redis_key_prefix)
    if settings.dialect == "postgres":
        return PostgresStore()
    return MemoryStore()


def limiting(settings: Settings) -> AbstractAsyncContextManager[None]:
    """Enforce the limits of `settings` while the app runs (inside the database's block)."""
    return rate_limits.running(
        limits=settings.values_for(rate_limits.RateLimits), store=store_for(settings)
    )
