"""A config update through one server process reaches the next reply in every process.

Two real gateway processes share the run's database; two real Chat Completions servers,
A and B, stand for the old and the new endpoint. Nothing restarts in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.factories import Account, create_session, send
from tests.gateway.e2e.processes import create_openai_config, gateway_env, start_gateways
from tests.gateway.e2e.sse import streamed_send
from tests.providers.fake_openai import FakeOpenAI, reply, stream, wait_until
from tests.providers.frames import DONE, chunk, frame, reply_frames
from tests.servers import Server, StartServer

OLD_ENDING = frame(chunk("endpoint")) + frame(chunk(finish_reason="stop")) + DONE


@pytest.fixture
async def fake_b() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def gateways(
    servers: StartServer, database_url: str, api_key: str, app: Starlette
) -> list[Server]:
    """Two processes on the run's (emptied) database."""
    return await start_gateways(servers, 2, gateway_env(database_url, api_key))


def ai_message(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()["data"]["ai_message"]
    return message


async def update_config(
    http: httpx.AsyncClient, admin: Account, config_id: str, base_url: str
) -> None:
    response = await http.put(
        f"/api/v1/model-configs/{config_id}",
        json={"base_url": base_url, "model_name": "model-b"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["version"] == 2


async def test_the_next_reply_in_every_process_uses_the_new_base_url_and_model(
    gateways: list[Server],
    admin: Account,
    alice: Account,
    fake_openai: FakeOpenAI,
    fake_b: FakeOpenAI,
    api_key: str,
) -> None:
    fake_a = fake_openai
    fake_a.script(reply("from A"))
    fake_b.script(stream([reply_frames(["from ", "B"])]), reply("from B"))
    first, second = gateways
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=10) as one,
        httpx.AsyncClient(base_url=second.base_url, timeout=10) as two,
    ):
        config = await create_openai_config(one, admin, fake_a.base_url, "model-a")
        session_id = await create_session(one, alice, model_config_id=config["id"])

        before = [ai_message(await send(http, alice, session_id)) for http in (one, two)]
        # Each process keeps its version-1 client, with a pooled connection to A.
        await wait_until(lambda: fake_a.open_connections == 2)
        await update_config(one, admin, config["id"], fake_b.base_url)
        async with streamed_send(two, alice, session_id, "after") as events:
            streamed = (await events.rest())[-2]
        after_in_first = ai_message(await send(one, alice, session_id, "after"))

    assert [message["content"] for message in before] == ["from A", "from A"]
    assert {(m["metadata"]["model_name"], m["metadata"]["config_version"]) for m in before} == {
        ("model-a", 1)
    }
    assert [request.body["model"] for request in fake_a.received] == ["model-a", "model-a"]
    assert streamed.name == "ai_message" and streamed.data["content"] == "from B"
    assert after_in_first["content"] == "from B"
    for message in (streamed.data, after_in_first):
        assert message["metadata"]["config_version"] == 2
        assert message["metadata"]["model_name"] == "model-b"
    assert [request.body["model"] for request in fake_b.received] == ["model-b", "model-b"]
    assert all(r.headers["Authorization"] == f"Bearer {api_key}" for r in fake_b.received)
    # Both processes closed their version-1 clients; neither was restarted.
    await wait_until(lambda: fake_a.open_connections == 0)
    assert first.process.poll() is None and second.process.poll() is None


async def test_a_reply_streaming_in_a_process_finishes_on_its_old_client(
    gateways: list[Server],
    admin: Account,
    alice: Account,
    fake_openai: FakeOpenAI,
    fake_b: FakeOpenAI,
    api_key: str,
) -> None:
    fake_a = fake_openai
    gate = asyncio.Event()
    fake_a.script(stream([frame(chunk(role="assistant")), frame(chunk("old ")), gate, OLD_ENDING]))
    fake_b.script(reply("new endpoint"))
    first, second = gateways
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=10) as one,
        httpx.AsyncClient(base_url=second.base_url, timeout=10) as two,
    ):
        config = await create_openai_config(one, admin, fake_a.base_url, "model-a")
        busy = await create_session(one, alice, model_config_id=config["id"])
        other = await create_session(one, alice, model_config_id=config["id"])

        async with streamed_send(two, alice, busy, "slow question") as events:
            assert (await events.next()).name == "user_message"
            assert (await events.next()).data["delta"] == "old "  # A is streaming to process 2
            await update_config(one, admin, config["id"], fake_b.base_url)
            meanwhile = [ai_message(await send(http, alice, other)) for http in (two, one)]
            gate.set()
            finished = (await events.rest())[-2]

    for message in meanwhile:
        assert message["content"] == "new endpoint"
        assert message["metadata"]["config_version"] == 2
    assert finished.name == "ai_message" and finished.data["content"] == "old endpoint"
    assert finished.data["metadata"]["config_version"] == 1
    assert finished.data["metadata"]["model_name"] == "model-a"
    assert [request.body["model"] for request in fake_a.received] == ["model-a"]
    assert [request.body["model"] for request in fake_b.received] == ["model-b", "model-b"]
    # Process 2 closed its old client once the reply on it was done.
    await wait_until(lambda: fake_a.open_connections == 0)
