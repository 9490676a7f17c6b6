"""sendMessageStream over real WebSockets, both protocols, both ways to authenticate."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from db.services import users
from tests.factories import Account, make_account, make_config
from tests.providers import FlakyProvider
from tests.schema.gql import new_session, ok
from tests.schema.ws import PROTOCOLS, LegacyWS, ProtocolClient, TransportWS
from tests.servers import LiveServer

STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    __typename
    ... on Message { id type content metadata createdAt session { id messageCount } }
    ... on MessageDelta { messageId delta }
  }
}"""
ADDED = "subscription($s: ID!) { messageAdded(sessionId: $s) { id } }"
HISTORY = """
query($s: ID!) { session(id: $s) { messages { edges { node { id type content metadata } } } } }"""
Protocol = type[ProtocolClient]


def credentials(account: Account, where: str) -> dict[str, Any]:
    """connect() arguments carrying the account's key on the upgrade or in connection_init."""
    if where == "header":
        return {"headers": account.headers}
    return {"init_payload": {"Authorization": f"Bearer {account.key}"}}


@pytest.mark.parametrize("where", ["header", "payload"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_stream_yields_user_message_deltas_then_ai_message(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: Protocol, where: str
) -> None:
    session_id = await new_session(client, alice)
    question = "tell me about streaming replies"
    variables = {"input": {"sessionId": session_id, "content": question, "metadata": {"n": 1}}}

    async with protocol.connect(live.ws_url, **credentials(alice, where)) as socket:
        operation = await socket.subscribe(STREAM, variables)
        results = await socket.results(operation)

    assert all("errors" not in result for result in results), results
    events = [result["data"]["sendMessageStream"] for result in results]
    user, *deltas, ai = events
    assert (user["__typename"], user["type"], user["content"]) == ("Message", "USER", question)
    assert user["metadata"] == {"n": 1}
    assert user["session"] == {"id": session_id, "messageCount": 1}
    assert len(deltas) > 1, "the echo model streams word by word"
    assert {d["__typename"] for d in deltas} == {"MessageDelta"}
    assert {d["messageId"] for d in deltas} == {ai["id"]}
    assert (ai["__typename"], ai["type"]) == ("Message", "AI")
    assert "".join(d["delta"] for d in deltas) == ai["content"] == f"Echo: {question}"
    assert ai["metadata"]["finish_reason"] == "stop" and ai["metadata"]["streamed"] is True
    assert ai["session"]["messageCount"] == 2
    stored = await ok(client, HISTORY, alice, {"s": session_id})
    nodes = [edge["node"] for edge in stored["session"]["messages"]["edges"]]
    assert [(n["id"], n["type"], n["content"]) for n in nodes] == [
        (user["id"], "USER", question),
        (ai["id"], "AI", ai["content"]),
    ]
    assert nodes[1]["metadata"] == ai["metadata"]


@pytest.mark.parametrize("operation", ["sendMessageStream", "messageAdded"])
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_subscriptions_without_valid_credentials_are_unauthenticated(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: Protocol, operation: str
) -> None:
    session_id = await new_session(client, alice)
    revoked = await make_account("revoked")
    await users.revoke_key(key_id_or_prefix=revoked.key_id)
    subscriptions: dict[str, tuple[str, dict[str, Any]]] = {
        "sendMessageStream": (STREAM, {"input": {"sessionId": session_id, "content": "hi"}}),
        "messageAdded": (ADDED, {"s": session_id}),
    }
    document, variables = subscriptions[operation]
    attempts: list[dict[str, Any]] = [
        {},
        {"init_payload": {"Authorization": "Bearer cgw_unknown"}},
        {"headers": {"Authorization": "Bearer cgw_unknown"}},
        {"init_payload": {"Authorization": alice.key}},  # not a Bearer value
        {"headers": revoked.headers},
        {"init_payload": revoked.headers},
    ]

    for attempt in attempts:
        async with protocol.connect(live.ws_url, **attempt) as socket:
            errors = await socket.operation_errors(await socket.subscribe(document, variables))
            assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"], attempt

    history = await ok(client, HISTORY, alice, {"s": session_id})
    assert history["session"]["messages"]["edges"] == []


async def test_stream_errors_carry_their_codes(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, bob: Account
) -> None:
    session_id = await new_session(client, alice)

    async with TransportWS.connect(live.ws_url, init_payload=alice.headers) as socket:
        blank = {"input": {"sessionId": session_id, "content": "  "}}
        [refused] = await socket.operation_errors(await socket.subscribe(STREAM, blank))
    async with TransportWS.connect(live.ws_url, init_payload=bob.headers) as socket:
        not_his = {"input": {"sessionId": session_id, "content": "hi"}}
        [hidden] = await socket.operation_errors(await socket.subscribe(STREAM, not_his))

    assert refused["extensions"] == {"code": "BAD_USER_INPUT", "field": "content"}
    assert (hidden["extensions"]["code"], hidden["message"]) == ("NOT_FOUND", "session not found")


async def test_queries_and_mutations_over_graphql_transport_ws(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    send = """mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "over ws"}) {
      aiMessage { content } } }"""

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        me = await socket.results(await socket.subscribe("{ me { name } }"))
        sent = await socket.results(await socket.subscribe(send, {"s": session_id}))

    assert me == [{"data": {"me": {"name": "alice"}}}]
    assert sent == [{"data": {"sendMessage": {"aiMessage": {"content": "Echo: over ws"}}}}]


async def test_legacy_graphql_ws_refuses_a_query_readably(
    live: LiveServer, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    async with LegacyWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation = await socket.subscribe("{ me { name } }")
        errors = await socket.operation_errors(operation)

    assert errors == [
        {"message": "queries are not allowed", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
    ]
    assert [r for r in caplog.records if r.name.startswith("gateway")] == []


async def test_a_model_failure_mid_stream_keeps_the_user_message(
    client: httpx.AsyncClient,
    live: LiveServer,
    alice: Account,
    flaky: FlakyProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = await make_config(provider="flaky")
    session_id = await new_session(client, alice, str(config.id))
    flaky.fail_next(1)
    variables = {"input": {"sessionId": session_id, "content": "q"}}

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        results = await socket.results(await socket.subscribe(STREAM, variables))

    user, failure = results
    assert user["data"]["sendMessageStream"]["type"] == "USER"
    assert failure["data"] is None
    assert [(e["extensions"]["code"], e["message"]) for e in failure["errors"]] == [
        ("INTERNAL_SERVER_ERROR", "the AI model failed to reply: upstream answered 503")
    ]
    history = await ok(client, HISTORY, alice, {"s": session_id})
    assert [e["node"]["type"] for e in history["session"]["messages"]["edges"]] == ["USER"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
