"""Fixtures shared by this folder: real server processes, and a proxy that counts the
round trips to PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from bench.pg_wire import PgWireProxy
from tests.servers import servers

__all__ = ["proxied_url", "proxy", "servers"]


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[PgWireProxy]:
    server = urlsplit(database_url)
    counting = PgWireProxy(server.hostname or "127.0.0.1", server.port or 5432, record=True)
    await counting.start()
    yield counting
    await counting.close()


def proxied_url(database_url: str, proxy: PgWireProxy) -> str:
    """`database_url` reached through the counting proxy."""
    server = urlsplit(database_url)
    return database_url.replace(server.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}")
