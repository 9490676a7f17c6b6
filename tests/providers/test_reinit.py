"""A config change rebuilds the client; the old one finishes its reply, then closes its sockets.

The fake server counts the TCP connections open from clients: each client has its own
pool, so a leaked client shows up as a connection that never closes.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from db.identity import Caller
from db.models import Role
from db.ports import ChatTurn, ModelReply, ReplyDelta
from db.services import model_configs
from gateway.providers import OpenAIProvider, ProviderRegistry
from gateway.providers.retry import ProviderTimeouts
from tests.factories import Account, create_session, make_config, send
from tests.providers.conftest import KEY_ENV, RETRY, openai_spec
from tests.providers.fake_openai import FakeOpenAI, held, reply, stream, wait_until
from tests.providers.frames import chunk, frame, reply_frames

TURNS = [ChatTurn(role="user", content="hi")]


@pytest.fixture
def openai_provider() -> OpenAIProvider:
    # A reply here waits on the test, for longer than the folder's 0.5 s read timeout.
    return OpenAIProvider(
        timeouts=ProviderTimeouts(connect=1.0, read=30.0, total=60.0), retry=RETRY
    )


async def test_a_streaming_reply_finishes_on_its_old_client_which_then_closes(
    fake_openai: FakeOpenAI, api_key: str, openai_provider: OpenAIProvider
) -> None:
    registry = ProviderRegistry([openai_provider])
    gate = asyncio.Event()
    fake_openai.script(
        stream([frame(chunk("old ")), gate, reply_frames(["reply"])]),
        stream([reply_frames(["new reply"])]),
    )
    old_spec = openai_spec(fake_openai.base_url, version=1)
    new_spec = openai_spec(fake_openai.base_url, version=2, parameters={"temperature": 0.1})

    async with registry.lease(old_spec) as old_client:
        old_items = old_client.stream(TURNS)
        assert await anext(old_items) == ReplyDelta("old ")

        # The config changed meanwhile: the next reply gets a new client.
        async with registry.lease(new_spec) as new_client:
            assert new_client is not old_client
            new_final = [item async for item in new_client.stream(TURNS)][-1]
        assert isinstance(new_final, ModelReply) and new_final.content == "new reply"
        # The old reply's connection and the new client's pooled one.
        await wait_until(lambda: fake_openai.open_connections == 2)

        gate.set()
        old_rest = [item async for item in old_items]
        old_final = old_rest[-1]
        assert isinstance(old_final, ModelReply) and old_final.content == "old reply"
        assert registry.open_clients() == 2

    # The last lease of the old version ended: its client closed its pool.
    await wait_until(lambda: fake_openai.open_connections == 1)
    assert registry.open_clients() == 1
    assert "temperature" not in fake_openai.received[0].body
    assert fake_openai.received[1].body["temperature"] == 0.1

    await registry.aclose()
    await wait_until(lambda: fake_openai.open_connections == 0)


async def test_an_idle_old_client_closes_as_soon_as_the_config_changes(
    fake_openai: FakeOpenAI, api_key: str, openai_provider: OpenAIProvider
) -> None:
    registry = ProviderRegistry([openai_provider])
    fake_openai.script(reply("one"), reply("two"))

    async with registry.lease(openai_spec(fake_openai.base_url, version=1)) as client:
        await client.complete(TURNS)
    assert fake_openai.open_connections == 1  # kept alive in the first client's pool

    async with registry.lease(openai_spec(fake_openai.base_url, version=2)) as client:
        await client.complete(TURNS)
        await wait_until(lambda: fake_openai.open_connections == 1)
    assert registry.open_clients() == 1
    await registry.aclose()
    await wait_until(lambda: fake_openai.open_connections == 0)


async def test_config_update_through_rest_during_a_reply(
    fake_openai: FakeOpenAI,
    api_key: str,
    client: httpx.AsyncClient,
    alice: Account,
    admin: Account,
    registry: ProviderRegistry,
) -> None:
    config = await make_config(
        provider="openai", model_name="gpt-fake", base_url=fake_openai.base_url, api_key_env=KEY_ENV
    )
    first_session = await create_session(client, alice, model_config_id=str(config.id))
    second_session = await create_session(client, alice, model_config_id=str(config.id))
    gate = asyncio.Event()
    fake_openai.script(held(gate, reply("from version 1")), reply("from version 2"))

    in_flight = asyncio.create_task(send(client, alice, first_session, "first"))
    await fake_openai.wait_for_requests(1)
    update = await client.put(
        f"/api/v1/model-configs/{config.id}",
        json={"parameters": {"temperature": 0.3}},
        headers=admin.headers,
    )
    assert update.status_code == 200, update.text
    assert update.json()["data"]["version"] == 2

    second = await send(client, alice, second_session, "second")
    assert second.status_code == 200, second.text
    assert second.json()["data"]["ai_message"]["content"] == "from version 2"
    assert second.json()["data"]["ai_message"]["metadata"]["config_version"] == 2
    await wait_until(lambda: fake_openai.open_connections == 2)

    gate.set()
    first = await in_flight
    assert first.status_code == 200, first.text
    assert first.json()["data"]["ai_message"]["content"] == "from version 1"
    assert first.json()["data"]["ai_message"]["metadata"]["config_version"] == 1
    await wait_until(lambda: fake_openai.open_connections == 1)
    assert registry.open_clients() == 1
    assert fake_openai.received[1].body["temperature"] == 0.3


async def test_config_update_through_the_service_rebuilds_with_the_new_key(
    fake_openai: FakeOpenAI,
    api_key: str,
    client: httpx.AsyncClient,
    alice: Account,
    admin: Account,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = await make_config(
        provider="openai", model_name="gpt-fake", base_url=fake_openai.base_url, api_key_env=KEY_ENV
    )
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    fake_openai.script(reply())
    assert (await send(client, alice, session_id, "one")).status_code == 200

    # A rotated key is read when the client is rebuilt, which a new config version causes.
    monkeypatch.setenv("CGW_TEST_ROTATED_KEY", "sk-rotated-0123456789")
    await model_configs.update(
        caller=Caller(user_id=admin.user_id, name=admin.name, role=Role.ADMIN),
        runtime=app.state.runtime,
        config_id=str(config.id),
        changes=model_configs.ConfigChanges(api_key_env="CGW_TEST_ROTATED_KEY"),
    )
    assert (await send(client, alice, session_id, "two")).status_code == 200

    first, second = fake_openai.received
    assert first.headers["Authorization"] == f"Bearer {api_key}"
    assert second.headers["Authorization"] == "Bearer sk-rotated-0123456789"
    await wait_until(lambda: fake_openai.open_connections == 1)
