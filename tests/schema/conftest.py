"""Fixtures of the GraphQL tests: accounts, and the app served by a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.providers import EchoProvider, ProviderRegistry
from gateway.settings import load_settings
from tests.providers import FlakyProvider
from tests.schema.broken import BrokenProvider
from tests.servers import LiveServer, live_server

OpenVariant = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def registry(flaky: FlakyProvider) -> ProviderRegistry:
    """The suite's registry plus `broken`, whose bug reaches the doors as an unexpected error."""
    return ProviderRegistry([EchoProvider(), flaky, BrokenProvider()])


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[LiveServer]:
    async with live_server(app) as server:
        yield server


@pytest.fixture
def variant(
    app: Starlette, database_url: str, registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> OpenVariant:
    """open(GRAPHQL_IDE="false", ...): a client of another app built from those environment
    variables, on the same database (whose connections the `app` fixture's lifespan holds)."""

    @asynccontextmanager
    async def open_variant(**environment: str) -> AsyncIterator[httpx.AsyncClient]:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(database_url=database_url, _env_file=None)
        other = create_app(settings, models=registry)
        transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield http

    return open_variant


@pytest.fixture
async def strawberry_client(variant: OpenVariant) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with GRAPHQL_FAST_PATH=false: Strawberry answers every document
    (on PostgreSQL, read queries would otherwise be answered by schema.compiled)."""
    async with variant(GRAPHQL_FAST_PATH="false") as client:
        yield client
