"""Fixtures for the provider tests: the fake server, a key in the environment, fast policies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from db.ports import ChatTurn, ModelReply, ModelSpec, ReplyDelta
from gateway.providers import EchoProvider, OpenAIProvider, ProviderRegistry
from gateway.providers.openai import OpenAIClient
from gateway.providers.retry import ProviderTimeouts, RetryPolicy
from tests.providers import FlakyProvider
from tests.providers.fake_openai import FakeOpenAI

KEY_ENV = "CGW_TEST_OPENAI_KEY"
# Small numbers keep failure paths quick; the retry count is what the tests assert on.
TIMEOUTS = ProviderTimeouts(connect=0.3, read=0.5, total=10.0)
RETRY = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)

MakeClient = Callable[..., Awaitable[OpenAIClient]]


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    # Not shaped like an OpenAI key, so only redaction of this very value can hide it.
    key = f"cgw-test-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


@pytest.fixture
def openai_provider() -> OpenAIProvider:
    return OpenAIProvider(timeouts=TIMEOUTS, retry=RETRY)


@pytest.fixture
def registry(flaky: FlakyProvider, openai_provider: OpenAIProvider) -> ProviderRegistry:
    """The app's registry in this folder: the shipped providers, with fast test policies."""
    return ProviderRegistry([EchoProvider(), flaky, openai_provider])


def openai_spec(base_url: str | None, *, version: int = 1, **fields: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "config_id": "config-1",
        "version": version,
        "provider": "openai",
        "model_name": "gpt-fake",
        "model_version": "2024-01-01",
        "parameters": {},
        "base_url": base_url,
        "api_key_env": KEY_ENV,
    }
    values.update(fields)
    return ModelSpec(**values)


@pytest.fixture
async def make_client(
    fake_openai: FakeOpenAI, api_key: str, openai_provider: OpenAIProvider
) -> AsyncIterator[MakeClient]:
    """Builds clients against the fake server (or `base_url=`), closing them afterwards."""
    clients: list[OpenAIClient] = []

    async def make(*, provider: OpenAIProvider | None = None, **fields: Any) -> OpenAIClient:
        fields.setdefault("base_url", fake_openai.base_url)
        client = (provider or openai_provider).build(openai_spec(**fields))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def collect(client: OpenAIClient) -> tuple[list[str], ModelReply]:
    """Stream a reply: the deltas' texts and the final reply, which must come last, once."""
    items = [item async for item in client.stream([ChatTurn(role="user", content="Go on")])]
    *deltas, final = items
    assert all(isinstance(item, ReplyDelta) for item in deltas)
    assert isinstance(final, ModelReply)
    return [item.text for item in deltas if isinstance(item, ReplyDelta)], final
