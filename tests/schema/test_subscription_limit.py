"""GRAPHQL_MAX_SUBSCRIPTIONS: the operations one WebSocket connection may hold open."""

from __future__ import annotations

import asyncio
from contextlib import suppress

import httpx
import pytest

from gateway.settings import Settings, load_settings
from tests.factories import Account
from tests.schema.gql import new_session
from tests.schema.ws import PROTOCOLS, ProtocolClient
from tests.servers import LiveServer

MAX_SUBSCRIPTIONS = 2
ADDED = "subscription($s: ID!) { messageAdded(sessionId: $s) { id } }"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=0,
        graphql_max_subscriptions=MAX_SUBSCRIPTIONS,
        _env_file=None,
    )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_one_subscription_past_the_limit_is_refused_and_the_others_go_on(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: type[ProtocolClient]
) -> None:
    session_id = await new_session(client, alice)
    async with protocol.connect(live.ws_url, headers=alice.headers) as ws:
        for _ in range(MAX_SUBSCRIPTIONS):
            await ws.subscribe(ADDED, {"s": session_id})
        refused = await ws.subscribe(ADDED, {"s": session_id})

        [error] = await ws.operation_errors(refused)

        assert error["message"] == "Subscription limit reached"
        # The open ones still hear of a new message (sent again until it comes: the
        # subscriptions may start listening after the first one was announced).
        for _ in range(20):
            sent = await client.post(
                "/api/v1/sessions/" + session_id + "/messages",
                json={"user_id": alice.user_id, "message": "hi"},
                headers=alice.headers,
            )
            assert sent.status_code == 200, sent.text
            with suppress(TimeoutError):
                message = await asyncio.wait_for(ws.receive(), 1)
                break
        else:
            raise AssertionError("the open subscriptions heard of no message")
        assert message["id"] in ("1", "2") and message["payload"]["data"]["messageAdded"]["id"]
