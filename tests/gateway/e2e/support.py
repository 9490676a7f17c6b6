"""Plain helpers of the end-to-end tests: `openai` configs and sessions, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from db.models import ModelConfig
from tests.factories import Account, create_session, make_config, read_history

T = TypeVar("T")
KEY_ENV = "CGW_E2E_OPENAI_KEY"  # the variable a config names; the tests set a key in it
WAIT_SECONDS = 10.0


async def openai_config(base_url: str, **fields: Any) -> ModelConfig:
    """A config of the `openai` provider pointing at `base_url`, keyed by KEY_ENV."""
    values: dict[str, Any] = {
        "provider": "openai",
        "model_name": "gpt-fake",
        "model_version": "2024-01-01",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
    }
    values.update(fields)
    return await make_config(**values)


async def openai_session(http: httpx.AsyncClient, account: Account, base_url: str) -> str:
    """A new session of `account` on a new `openai` config at `base_url`."""
    config = await openai_config(base_url)
    return await create_session(http, account, model_config_id=str(config.id))


async def eventually(probe: Callable[[], Awaitable[T | None]]) -> T:
    """The first truthy result of `probe`, polled for at most WAIT_SECONDS."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.02)


async def stored(
    http: httpx.AsyncClient, account: Account, session_id: str, count: int
) -> list[dict[str, Any]]:
    """The session's messages once there are `count` of them (REST, oldest first)."""

    async def probe() -> list[dict[str, Any]] | None:
        data = await read_history(http, account, session_id)
        return data["messages"] if data["total"] >= count else None

    messages = await eventually(probe)
    assert len(messages) == count, messages
    return messages
