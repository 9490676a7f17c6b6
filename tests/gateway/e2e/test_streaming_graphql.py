"""sendMessageStream over a real WebSocket (graphql-transport-ws), from a real Chat
Completions server that streams; incrementality shown with a gate, as for REST."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import Account
from tests.gateway.e2e.support import openai_session, stored
from tests.providers.fake_openai import FakeOpenAI, error, stream
from tests.providers.frames import DONE, chunk, frame, usage_chunk
from tests.schema.ws import TransportWS
from tests.servers import LiveServer

STREAM = """
subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) {
    __typename
    ... on Message { id type content metadata session { id messageCount } }
    ... on MessageDelta { messageId delta }
  }
}"""


def event_of(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    event: dict[str, Any] = result["data"]["sendMessageStream"]
    return event


async def test_the_reply_streams_as_deltas_then_the_stored_message(
    http: httpx.AsyncClient,
    live: LiveServer,
    alice: Account,
    fake_openai: FakeOpenAI,
    api_key: str,
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    gate = asyncio.Event()
    fake_openai.script(
        stream(
            [
                frame(chunk(role="assistant")),
                frame(chunk("Streams ")),
                gate,
                frame(chunk("flow, ")),
                frame(chunk("piece by piece.")),
                frame(chunk(finish_reason="stop")),
                frame(usage_chunk(30, 6)),
                DONE,
            ]
        )
    )
    variables = {"input": {"sessionId": session_id, "content": "How do streams work?"}}

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation = await socket.subscribe(STREAM, variables)
        user = event_of(await socket.next_result(operation))
        # The model holds the rest until the gate opens: this piece cannot be buffered.
        first = event_of(await socket.next_result(operation))
        gate.set()
        rest = [event_of(result) for result in await socket.results(operation)]

    assert (user["__typename"], user["type"]) == ("Message", "USER")
    assert user["content"] == "How do streams work?"
    assert (first["__typename"], first["delta"]) == ("MessageDelta", "Streams ")
    *more, ai = rest
    deltas = [first, *more]
    assert [delta["__typename"] for delta in deltas] == ["MessageDelta"] * 3
    assert {delta["messageId"] for delta in deltas} == {ai["id"]}
    assert (ai["__typename"], ai["type"]) == ("Message", "AI")
    assert [delta["delta"] for delta in deltas] == ["Streams ", "flow, ", "piece by piece."]
    assert "".join(delta["delta"] for delta in deltas) == ai["content"]
    assert ai["content"] == "Streams flow, piece by piece."
    assert ai["session"] == {"id": session_id, "messageCount": 2}
    metadata = ai["metadata"]
    assert (metadata["provider"], metadata["model_name"]) == ("openai", "gpt-fake")
    assert metadata["usage"] == {"prompt_tokens": 30, "completion_tokens": 6}
    assert metadata["finish_reason"] == "stop" and metadata["streamed"] is True
    assert metadata["time_to_first_token_ms"] >= 0

    question, answer = await stored(http, alice, session_id, 2)
    assert (question["message_id"], answer["message_id"]) == (user["id"], ai["id"])
    assert answer["content"] == ai["content"] and answer["metadata"] == metadata
    [request] = fake_openai.received
    assert request.body["stream"] is True
    assert request.headers["Authorization"] == f"Bearer {api_key}"


async def test_an_upstream_failure_ends_the_stream_with_an_error(
    http: httpx.AsyncClient,
    live: LiveServer,
    alice: Account,
    fake_openai: FakeOpenAI,
    api_key: str,
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    fake_openai.script(error(401, "invalid api key", kind="invalid_request_error"))
    variables = {"input": {"sessionId": session_id, "content": "Hello?"}}

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation = await socket.subscribe(STREAM, variables)
        user = event_of(await socket.next_result(operation))
        [failed] = await socket.results(operation)

    assert user["type"] == "USER"
    [problem] = failed["errors"]
    assert "HTTP 401: invalid api key" in problem["message"], problem
    assert problem["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert len(fake_openai.received) == 1  # a 401 is not retried
    [question] = await stored(http, alice, session_id, 1)
    assert question["message_id"] == user["id"]
