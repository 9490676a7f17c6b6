"""Request ids and gauges over a real uvicorn: the WebSocket upgrade, open subscriptions."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import Account, create_session
from tests.gateway.e2e.support import eventually
from tests.schema.ws import TransportWS
from tests.servers import LiveServer

ADDED = "subscription($s: ID!) { messageAdded(sessionId: $s) { id } }"


async def open_subscriptions(http: httpx.AsyncClient) -> float:
    scrape = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(scrape):
        if family.name == "active_subscriptions":
            return float(family.samples[0].value)
    raise AssertionError("no active_subscriptions gauge")


async def until_open(http: httpx.AsyncClient, count: float) -> None:
    async def reached() -> bool:
        return await open_subscriptions(http) == count

    await eventually(reached)


async def test_the_upgrade_answer_carries_the_request_id_and_subscriptions_are_counted(
    http: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await create_session(http, alice)
    before = await open_subscriptions(http)
    headers = {**alice.headers, "X-Request-ID": "ws-upgrade-1"}
    async with TransportWS.connect(live.ws_url, headers=headers) as socket:
        response = socket.socket.response
        assert response is not None
        assert response.headers["x-request-id"] == "ws-upgrade-1"
        operation = await socket.subscribe(ADDED, {"s": session_id})
        await until_open(http, before + 1)
        await socket.stop(operation)
        await until_open(http, before)
