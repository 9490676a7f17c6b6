"""The REST send as server-sent events, through a real uvicorn, from a real Chat
Completions server that streams.

Incrementality is shown without clocks: the fake model holds the rest of its reply until
the test sets a gate, and the test reads the first delta before it sets it.
"""

from __future__ import annotations

import asyncio

import httpx

from db.models import LogEntry
from tests.factories import Account, send
from tests.gateway.e2e.conftest import RETRY
from tests.gateway.e2e.sse import names, resumed_stream, streamed_send
from tests.gateway.e2e.support import openai_session, stored
from tests.providers.fake_openai import FakeOpenAI, error, reply, stream, wait_until
from tests.providers.frames import DONE, chunk, frame, reply_frames, usage_chunk

STORY = [frame(chunk(role="assistant")), frame(chunk("Once "))]
STORY_END = [
    frame(chunk("upon ")),
    frame(chunk("a time.")),
    frame(chunk(finish_reason="stop")),
    frame(usage_chunk(21, 3)),
    DONE,
]


async def test_deltas_arrive_as_the_model_produces_them(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    gate = asyncio.Event()
    fake_openai.script(stream([*STORY, gate, *STORY_END]))

    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        user = await events.next()
        # The model holds the rest until the gate opens: this delta cannot be buffered.
        first = await events.next()
        gate.set()
        rest = await events.rest()

    assert user.name == "user_message" and user.data.keys() == {"message_id", "created_time"}
    assert (first.name, first.data["delta"]) == ("delta", "Once ")
    *more, ai, done = rest
    deltas = [first, *more]
    assert [event.name for event in deltas] == ["delta"] * 3
    assert [event.data["delta"] for event in deltas] == ["Once ", "upon ", "a time."]
    assert ai.name == "ai_message" and done.name == "done"
    assert {event.data["message_id"] for event in deltas} == {ai.data["message_id"]}
    assert "".join(event.data["delta"] for event in deltas) == "Once upon a time."
    assert ai.data["content"] == "Once upon a time."
    assert done.data == {"code": 200, "data": {"user_message": user.data, "ai_message": ai.data}}
    metadata = ai.data["metadata"]
    assert metadata["provider"] == "openai" and metadata["model_name"] == "gpt-fake"
    assert metadata["usage"] == {"prompt_tokens": 21, "completion_tokens": 3}
    assert metadata["finish_reason"] == "stop" and metadata["streamed"] is True
    assert metadata["time_to_first_token_ms"] >= 0
    assert metadata["config_version"] == 1

    question, answer = await stored(http, alice, session_id, 2)
    assert (question["message_id"], question["type"], question["content"]) == (
        user.data["message_id"],
        "user",
        "Tell me a story",
    )
    assert question["created_time"] == user.data["created_time"]
    assert answer == {**ai.data, "type": "ai"}
    [request] = fake_openai.received
    assert request.body["stream"] is True and request.body["model"] == "gpt-fake"
    assert request.body["messages"] == [{"role": "user", "content": "Tell me a story"}]
    assert request.headers["Authorization"] == f"Bearer {api_key}"


async def test_without_the_accept_header_the_answer_is_the_plain_envelope(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    fake_openai.script(reply("A plain answer.", usage=(8, 2)), stream([reply_frames(["Hi."])]))

    plain = await send(http, alice, session_id, "first")
    async with streamed_send(http, alice, session_id, "second") as events:
        streamed = await events.rest()

    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    body = plain.json()
    assert body.keys() == {"code", "data"} and body["code"] == 200
    assert body["data"]["ai_message"]["content"] == "A plain answer."
    assert body["data"]["ai_message"]["metadata"]["streamed"] is False
    assert names(streamed) == ["user_message", "delta", "ai_message", "done"]
    done = streamed[-1].data
    # The last event carries exactly the answer the route gives without the header.
    assert done.keys() == body.keys() and done["code"] == 200
    assert done["data"].keys() == body["data"].keys() == {"user_message", "ai_message"}
    for part in ("user_message", "ai_message"):
        assert done["data"][part].keys() == body["data"][part].keys()
    first_request, second_request = fake_openai.received
    assert "stream" not in first_request.body and second_request.body["stream"] is True


async def test_an_upstream_failure_is_an_error_event_and_a_retry_asks_again(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    failures = [error(500, "upstream trouble")] * (RETRY.max_retries + 1)
    fake_openai.script(*failures, stream([reply_frames(["Second ", "time."])]))
    retry_key = {"Idempotency-Key": "story-1"}

    async with streamed_send(http, alice, session_id, "Tell me", headers=retry_key) as events:
        failed = await events.rest()

    assert [event.name for event in failed] == ["user_message", "error"]
    assert failed[1].data.keys() == {"code", "message"}
    assert failed[1].data["code"] == 500
    assert "HTTP 500: upstream trouble" in failed[1].data["message"]
    [question] = await stored(http, alice, session_id, 1)
    assert question["message_id"] == failed[0].data["message_id"]
    assert await LogEntry.filter(event="model.failed").count() == 1

    async with streamed_send(http, alice, session_id, "Tell me", headers=retry_key) as events:
        retried = await events.rest()

    assert names(retried) == ["user_message", "delta", "ai_message", "done"]
    assert retried[0].data == failed[0].data  # the stored question, not a second one
    assert retried[-2].data["content"] == "Second time."
    stored_pair = await stored(http, alice, session_id, 2)
    assert [(m["type"], m["content"]) for m in stored_pair] == [
        ("user", "Tell me"),
        ("ai", "Second time."),
    ]
    assert len(fake_openai.received) == RETRY.max_retries + 2
    assert fake_openai.received[-1].body["messages"] == [{"role": "user", "content": "Tell me"}]


async def test_a_dropped_connection_does_not_stop_the_reply_and_the_stream_resumes(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    """The client leaves mid-reply: the reply runs to its end and is stored whole; coming
    back with Last-Event-ID gives exactly the rest, then the stored reply."""
    session_id = await openai_session(http, alice, fake_openai.base_url)
    held = asyncio.Event()  # the model goes on thinking until the client has given up
    fake_openai.script(stream([*STORY, held, *STORY_END]))

    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        await events.next()  # user_message
        delta = await events.next()
    # Leaving the block closed the connection in the middle of the reply.
    assert delta.name == "delta", delta
    assert (delta.data["delta"], delta.data["offset"], delta.id) == ("Once ", 0, "5")
    reply_id = delta.data["message_id"]

    async with resumed_stream(http, alice, session_id, reply_id, last_event_id=delta.id) as resumed:
        held.set()
        rest = await resumed.rest()

    assert names(rest) == ["delta", "ai_message", "done"]
    pieces = [event for event in rest if event.name == "delta"]
    assert pieces[0].data["offset"] == 5
    assert "Once " + "".join(piece.data["delta"] for piece in pieces) == "Once upon a time."
    assert pieces[-1].id == str(len("Once upon a time."))
    _, answer = await stored(http, alice, session_id, 2)
    assert answer["message_id"] == reply_id
    assert answer["content"] == "Once upon a time."
    assert answer["metadata"]["finish_reason"] == "stop"
    assert rest[-2].data == {key: answer[key] for key in rest[-2].data}


async def test_a_finished_reply_resumes_as_its_stored_message(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    fake_openai.script(stream([*STORY, *STORY_END]))
    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        everything = await events.rest()
    reply_id = everything[-2].data["message_id"]

    async with resumed_stream(http, alice, session_id, reply_id, last_event_id="5") as resumed:
        rest = await resumed.rest()

    assert names(rest) == ["ai_message", "done"]
    assert rest[0].data["content"] == "Once upon a time."


async def test_a_reply_that_failed_mid_stream_resumes_as_its_failure(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    """Once the turn is over, a resume reads the shared buffer: the pieces said before the
    failure, then the failure as an error event."""
    session_id = await openai_session(http, alice, fake_openai.base_url)
    failure = {"error": {"message": "the model overloaded", "type": "server_error"}}
    fake_openai.script(stream([*STORY, frame(failure)]))
    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        first = await events.rest()
    reply_id = next(event.data["message_id"] for event in first if event.name == "delta")

    async with resumed_stream(http, alice, session_id, reply_id, last_event_id="0") as resumed:
        again = await resumed.rest()

    assert names(first) == ["user_message", "delta", "error"]
    assert names(again) == ["delta", "error"]
    assert again[0].data["delta"] == "Once "
    assert again[-1].data["code"] == 500
    assert "the model overloaded" in again[-1].data["message"]
    assert again[-1].data == first[-1].data


async def test_resuming_needs_a_reply_of_a_session_the_caller_may_see(
    http: httpx.AsyncClient, alice: Account, bob: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    fake_openai.script(stream([*STORY, *STORY_END]))
    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        everything = await events.rest()
    question_id = everything[0].data["message_id"]
    reply_id = everything[-2].data["message_id"]
    url = f"/api/v1/sessions/{session_id}/messages/{{}}/stream"
    accept = {"Accept": "text/event-stream"}

    as_bob = await http.get(url.format(reply_id), headers={**bob.headers, **accept})
    a_question = await http.get(url.format(question_id), headers={**alice.headers, **accept})
    bad_id = await http.get(
        url.format(reply_id), headers={**alice.headers, **accept, "Last-Event-ID": "x"}
    )

    assert (as_bob.status_code, as_bob.json()["data"]) == (404, None)
    assert a_question.status_code == 404
    assert bad_id.status_code == 400
    assert "Last-Event-ID" in bad_id.json()["message"]


async def test_cancel_stops_the_reply_stores_what_was_said_and_ends_the_senders_stream(
    http: httpx.AsyncClient, alice: Account, fake_openai: FakeOpenAI, api_key: str
) -> None:
    session_id = await openai_session(http, alice, fake_openai.base_url)
    held = asyncio.Event()  # only the cancel ends this reply
    fake_openai.script(stream([*STORY, held, *STORY_END]), reply("Still here."))

    async with streamed_send(http, alice, session_id, "Tell me a story") as events:
        await events.next()
        await events.next()
        cancel = await http.post(f"/api/v1/sessions/{session_id}/cancel", headers=alice.headers)
        rest = await events.rest()
    again = await http.post(f"/api/v1/sessions/{session_id}/cancel", headers=alice.headers)
    held.set()  # the fake counts its connection until its handler ends

    assert cancel.json() == {"code": 200, "data": {"cancelled": True}}
    assert names(rest) == ["ai_message", "done"]
    assert rest[0].data["content"] == "Once "
    assert rest[0].data["metadata"]["finish_reason"] == "cancelled"
    _, partial = await stored(http, alice, session_id, 2)
    assert (partial["content"], partial["metadata"]["finish_reason"]) == ("Once ", "cancelled")
    assert again.json() == {"code": 200, "data": {"cancelled": False}}
    # The session is free again, and the next turn sees what was said.
    following = await send(http, alice, session_id, "Are you there?")
    assert following.json()["data"]["ai_message"]["content"] == "Still here."
    await wait_until(lambda: fake_openai.open_connections == 1)
    assert fake_openai.received[-1].body["messages"] == [
        {"role": "user", "content": "Tell me a story"},
        {"role": "assistant", "content": "Once "},
        {"role": "user", "content": "Are you there?"},
    ]
