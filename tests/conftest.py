"""Fixtures: one database per test run (SQLite file or a scratch PostgreSQL database),
emptied before each test; the app with its real lifespan; an in-process HTTP client."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from tortoise import Tortoise

from db import migrate, scratch
from db.ports import EventBroker
from db.services import model_configs
from gateway.app import create_app
from gateway.providers import EchoProvider, ProviderRegistry
from gateway.settings import Settings, load_settings
from tests.factories import Account, make_account
from tests.providers import FlakyProvider

BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
POSTGRES_SERVER = os.environ.get(
    "TEST_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432/postgres"
)
TABLES = (
    "reply_chunks",
    "reply_streams",
    "event_payloads",
    "message_feedback",
    "usage_records",
    "messages",
    "chat_sessions",
    "api_keys",
    "logs",
    "users",
    "model_config_versions",
    "model_configs",
)


# Whether the compiled GraphQL path answers read queries in this run: on PostgreSQL, unless
# the run switches it off (GRAPHQL_FAST_PATH=false: the suite must pass without it too).
COMPILED_READS = BACKEND == "postgres" and TypeAdapter(bool).validate_python(
    os.environ.get("GRAPHQL_FAST_PATH", "true")  # read as the settings read it
)
needs_compiled_reads = pytest.mark.skipif(
    not COMPILED_READS, reason="the compiled GraphQL path (PostgreSQL, GRAPHQL_FAST_PATH)"
)


def pytest_report_header() -> str:
    return f"database backend: {BACKEND}"


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(_TEST_SERVERS):
            self.records.append(record)


# uvicorn's loggers do not propagate to the root logger.
_WATCHED_LOGGERS = ("", "uvicorn")
# The fake model providers the tests run are aiohttp servers: their log is not the gateway's.
_TEST_SERVERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access")


@pytest.fixture(autouse=True)
def no_unasked_internal_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """An invariant of the whole suite: no test leaves an internal error (an ERROR record,
    with its traceback) in the server's log unless it asks for one with
    `@pytest.mark.internal_errors`. A client's mistake must never look like our bug."""
    handler = _ErrorRecords()
    for name in _WATCHED_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        for name in _WATCHED_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
    if request.node.get_closest_marker("internal_errors") is None:
        lines = [f"{r.name}: {r.getMessage()}" for r in handler.records]
        assert lines == [], "internal errors logged by a test that did not ask for them"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the whole run."""
    if BACKEND == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        asyncio.run(migrate.upgrade(url))
        yield url
    elif BACKEND == "postgres":
        url = asyncio.run(scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test"))
        try:
            asyncio.run(migrate.upgrade(url))
            yield url
        finally:
            asyncio.run(scratch.drop_postgres(POSTGRES_SERVER, url))
    else:
        raise pytest.UsageError(f"TEST_DATABASE must be sqlite or postgres, not {BACKEND!r}")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A test that leaves a reply running waits this long for it at the app's shutdown.
    # Rate limits off: tests send many requests per key and count statements; the tests
    # of the limits (test_rate_limits.py) set their own.
    return load_settings(
        database_url=database_url,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=0,
        reply_rate_limit_per_minute=0,
        max_streams_per_user=0,
        _env_file=None,
    )


@pytest.fixture
def flaky() -> FlakyProvider:
    return FlakyProvider()


@pytest.fixture
def registry(flaky: FlakyProvider) -> ProviderRegistry:
    return ProviderRegistry([EchoProvider(), flaky])


async def empty_database() -> None:
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        for table in TABLES:
            await connection.execute_script(f'DELETE FROM "{table}"')
        await connection.execute_script("DELETE FROM sqlite_sequence WHERE name = 'logs'")
    await model_configs.ensure_builtin()


@pytest.fixture
def events() -> EventBroker | None:
    """The app's event broker: None for the one its settings choose (override to swap it)."""
    return None


@pytest.fixture
async def app(
    settings: Settings, registry: ProviderRegistry, events: EventBroker | None
) -> AsyncIterator[Starlette]:
    """The real app with its lifespan running, on an emptied database."""
    application = create_app(settings, models=registry, events=events)
    async with application.router.lifespan_context(application):
        await empty_database()
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


@pytest.fixture
async def alice(app: Starlette) -> Account:
    return await make_account("alice")


@pytest.fixture
async def bob(app: Starlette) -> Account:
    return await make_account("bob")


@pytest.fixture
async def admin(app: Starlette) -> Account:
    return await make_account("root", admin=True)
