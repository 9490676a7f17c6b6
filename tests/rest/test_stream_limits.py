"""MAX_STREAMS_PER_USER through the REST door: event streams, on a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gateway.settings import Settings, load_settings
from tests.factories import Account, create_session, make_config, send
from tests.rest.expect import ok
from tests.servers import live_server


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=1000,
        reply_rate_limit_per_minute=1000,
        max_streams_per_user=1,
        rate_limit_flush_seconds=60,
        _env_file=None,
    )


@pytest.fixture
async def live_url(app: Starlette) -> AsyncIterator[str]:
    async with live_server(app) as server:
        yield server.http_url


async def test_one_stream_at_a_time_per_user(
    client: httpx.AsyncClient, alice: Account, live_url: str
) -> None:
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 100})
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    other_session = await create_session(client, alice)
    question = " ".join(f"word{n}" for n in range(40))
    stream = {**alice.headers, "Accept": "text/event-stream"}
    path = f"/api/v1/sessions/{session_id}/messages"
    body = {"user_id": alice.user_id, "message": question}
    async with (
        httpx.AsyncClient(base_url=live_url, timeout=10) as http,
        http.stream("POST", path, json=body, headers=stream) as first,
    ):
        assert first.status_code == 200
        lines = first.aiter_lines()
        while "event: delta" not in await anext(lines):
            pass
        reply_id = json.loads((await anext(lines)).removeprefix("data: "))["message_id"]
        # Picking the same reply up again is a second stream too.
        resumed = await http.get(f"{path}/{reply_id}/stream", headers=stream)
        assert resumed.status_code == 429, resumed.text
        second = await http.post(
            f"/api/v1/sessions/{other_session}/messages",
            json={"user_id": alice.user_id, "message": "hi"},
            headers=stream,
        )
        assert second.status_code == 429, second.text
        assert second.json()["code"] == 429
        assert int(second.headers["Retry-After"]) >= 1
        # Not streamed: no stream is held.
        ok(await send(client, alice, other_session, "hi"))
    # The first stream closed: the next may open (given back as its generator closes).
    for _ in range(50):
        response = await send(
            client, alice, other_session, "again", headers={"Accept": "text/event-stream"}
        )
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 200, response.text
