"""Fixtures of the end-to-end tests: the app behind a real uvicorn on loopback, with the
`openai` provider; a scripted Chat Completions server; the key in the environment."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gateway.providers import EchoProvider, OpenAIProvider, ProviderRegistry
from gateway.providers.retry import ProviderTimeouts, RetryPolicy
from tests.gateway.e2e.support import KEY_ENV
from tests.providers import FlakyProvider
from tests.providers.fake_openai import FakeOpenAI
from tests.servers import (
    LiveServer,
    live_server,
    servers,  # noqa: F401 (a fixture, for the tests on processes)
)

# A held reply waits on the test, so reads may idle; retries stay quick and few.
TIMEOUTS = ProviderTimeouts(connect=1.0, read=20.0, total=30.0)
RETRY = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A key only redaction of this very value can hide (not shaped like OpenAI's)."""
    key = f"cgw-e2e-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def registry(flaky: FlakyProvider) -> ProviderRegistry:
    """The app's registry here: the shipped providers, `openai` with quick test policies."""
    openai = OpenAIProvider(timeouts=TIMEOUTS, retry=RETRY)
    return ProviderRegistry([EchoProvider(), flaky, openai])


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[LiveServer]:
    async with live_server(app) as server:
        yield server


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client of the live server."""
    async with httpx.AsyncClient(base_url=live.http_url, timeout=10) as client:
        yield client
