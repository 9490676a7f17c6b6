"""Rate limits through the GraphQL door: RATE_LIMITED with retryAfter, for queries (the
compiled fast path counted once), sendMessage, and streamed subscriptions."""

from __future__ import annotations

import httpx
import pytest

from db.services import rate_limits
from gateway.settings import Settings, load_settings
from tests.factories import Account, make_config
from tests.schema.gql import SEND, new_session, post
from tests.schema.ws import PROTOCOLS, ProtocolClient
from tests.servers import LiveServer

PER_MINUTE = 6
REPLIES = 2
ME = "{ me { name } }"
STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    ... on Message { id type }
    ... on MessageDelta { messageId delta }
  }
}"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=PER_MINUTE,
        reply_rate_limit_per_minute=REPLIES,
        max_streams_per_user=1,
        rate_limit_flush_seconds=60,
        _env_file=None,
    )


def check_rate_limited(error: dict[str, object]) -> None:
    extensions = error["extensions"]
    assert isinstance(extensions, dict)
    assert extensions["code"] == "RATE_LIMITED", error
    retry_after = extensions["retryAfter"]
    assert isinstance(retry_after, int) and retry_after >= 1, error


async def test_queries_over_the_limit_are_rate_limited(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    # On PostgreSQL `me` takes the compiled path: each request must count once.
    for _ in range(PER_MINUTE):
        answer = await post(client, ME, alice)
        assert answer.errors == [] and answer.data == {"me": {"name": "alice"}}
    answer = await post(client, ME, alice)
    check_rate_limited(answer.error())
    assert answer.data is None
    assert (await post(client, ME, bob)).errors == []


async def test_model_replies_over_the_limit_are_rate_limited(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    for n in range(REPLIES):
        asked = {"input": {"sessionId": session_id, "content": f"q{n}"}}
        answer = await post(client, SEND, alice, asked)
        assert answer.errors == [], answer.errors
    more = {"input": {"sessionId": session_id, "content": "more"}}
    answer = await post(client, SEND, alice, more)
    check_rate_limited(answer.error())
    assert "model replies" in str(answer.error()["message"])


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.protocol)
async def test_a_second_stream_is_rate_limited(
    client: httpx.AsyncClient, live: LiveServer, alice: Account, protocol: type[ProtocolClient]
) -> None:
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 100})
    slow = await new_session(client, alice, str(config.id))
    other = await new_session(client, alice)
    question = " ".join(f"word{n}" for n in range(40))
    async with protocol.connect(live.ws_url, headers=alice.headers) as socket:
        first = await socket.subscribe(STREAM, {"input": {"sessionId": slow, "content": question}})
        assert (await socket.next_result(first))["data"]["sendMessageStream"]["type"] == "USER"
        second = await socket.subscribe(STREAM, {"input": {"sessionId": other, "content": "hi"}})
        while True:  # pieces of the first stream may come in between
            message = await socket.receive()
            if message.get("id") == second:
                break
        payload = message["payload"]
        errors = payload if isinstance(payload, list) else payload.get("errors", [payload])
        check_rate_limited(errors[0])


async def test_an_operation_over_the_limit_is_refused_and_counted_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Three (nullable) root fields ask for the caller: one request, one refusal."""
    for _ in range(PER_MINUTE):
        assert (await post(client, ME, alice)).errors == []
    document = """query($id: ID!) {
      a: session(id: $id) { id } b: session(id: $id) { id } c: modelConfig(id: $id) { id } }"""

    answer = await post(client, document, alice, {"id": "00000000-0000-4000-8000-000000000000"})

    assert answer.codes == ["RATE_LIMITED"] * 3, answer.errors
    limiter = rate_limits._active
    assert limiter is not None
    refusals = [tally.count for (kind, _), tally in limiter.refusals.items() if kind == "req"]
    assert refusals == [1]
