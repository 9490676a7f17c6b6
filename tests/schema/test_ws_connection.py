"""One WebSocket connection, many operations: each authenticates and caches on its own;
protocol mistakes close or refuse without an internal error."""

from __future__ import annotations

import logging

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from db.services import users
from tests.factories import Account, make_config
from tests.schema.gql import new_session
from tests.schema.ws import PROTOCOLS, ProtocolClient, TransportWS
from tests.servers import LiveServer

ADDED = "subscription($s: ID!) { messageAdded(sessionId: $s) { id } }"
Protocol = type[ProtocolClient]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_a_key_revoked_mid_connection_stops_the_next_operation(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: Protocol
) -> None:
    session_id = await new_session(client, alice)

    async with protocol.connect(live.ws_url, init_payload=alice.headers) as socket:
        first = await socket.subscribe(ADDED, {"s": session_id})
        await socket.stop(first)
        await users.revoke_key(key_id_or_prefix=alice.key_id)
        errors = await socket.operation_errors(await socket.subscribe(ADDED, {"s": session_id}))

    assert [(e["extensions"]["code"], e["message"]) for e in errors] == [
        ("UNAUTHENTICATED", "API key has been revoked")
    ]


async def test_each_operation_reads_fresh_rows(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, admin: Account
) -> None:
    config = await make_config(model_name="old name")
    session_id = await new_session(client, alice, str(config.id))
    query = "query($s: ID!) { session(id: $s) { modelConfig { modelName } } }"
    rename = (
        'mutation($c: ID!) { updateModelConfig(id: $c, input: {modelName: "new name"}) { id } }'
    )

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        before = await socket.results(await socket.subscribe(query, {"s": session_id}))
        async with TransportWS.connect(live.ws_url, headers=admin.headers) as other:
            await other.results(await other.subscribe(rename, {"c": str(config.id)}))
        after = await socket.results(await socket.subscribe(query, {"s": session_id}))

    assert before == [{"data": {"session": {"modelConfig": {"modelName": "old name"}}}}]
    assert after == [{"data": {"session": {"modelConfig": {"modelName": "new name"}}}}]


async def test_an_unknown_operation_name_closes_the_socket_without_an_internal_error(
    live: LiveServer, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        payload = {"query": "query A { me { name } }", "operationName": "B"}
        await socket.send({"id": "1", "type": "subscribe", "payload": payload})
        with pytest.raises(ConnectionClosed) as closed:
            await socket.receive()

    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4400,
        'Unknown operation named "B".',
    )
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_subscribing_before_connection_init_is_refused(live: LiveServer) -> None:
    async with connect(live.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as raw:
        await raw.send('{"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}}')
        with pytest.raises(ConnectionClosed) as closed:
            await raw.recv()

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
