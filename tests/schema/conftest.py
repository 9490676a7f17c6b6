"""Fixtures of the GraphQL tests: accounts, and the app served by a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.providers import EchoProvider, ProviderRegistry
from gateway.settings import load_settings
from tests.factories import Account, make_account
from tests.providers import FlakyProvider
from tests.schema.broken import BrokenProvider

OpenVariant = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def registry(flaky: FlakyProvider) -> ProviderRegistry:
    """The suite's registry plus `broken`, whose bug reaches the doors as an unexpected error."""
    return ProviderRegistry([EchoProvider(), flaky, BrokenProvider()])


@pytest.fixture
async def alice(app: Starlette) -> Account:
    return await make_account("alice")


@pytest.fixture
async def bob(app: Starlette) -> Account:
    return await make_account("bob")


@pytest.fixture
async def admin(app: Starlette) -> Account:
    return await make_account("root", admin=True)


@dataclass(frozen=True)
class LiveServer:
    http_url: str
    ws_url: str


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[LiveServer]:
    """The test's own app (same database, same provider registry) behind real sockets.

    uvicorn runs in the test's event loop; the app's lifespan is already running (the
    `app` fixture), so uvicorn must not run it again.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises why it could not start
                    raise AssertionError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(
            http_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/graphql"
        )
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(15):
                await task
        finally:
            if not task.done():
                task.cancel()


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
