"""1.2 GET and 2.1 POST /api/v1/sessions/{session_id}/messages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from db.models import ChatSession
from tests.factories import Account, create_session, make_config, send
from tests.rest.expect import ok, refused, url, utc_time
from tests.schema.gql import eventually


async def _history(
    client: httpx.AsyncClient, session_id: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get(
        url(f"/sessions/{session_id}/messages"), params=params, headers=headers
    )
    data: dict[str, Any] = ok(response)
    return data


async def test_send_answers_with_both_messages(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    data = ok(await send(client, alice, session_id, "What is 2 + 2?"))
    question, answer = data["user_message"], data["ai_message"]
    assert set(question) >= {"message_id", "created_time"}
    assert set(answer) >= {"message_id", "content", "created_time", "metadata"}
    assert isinstance(question["message_id"], str) and isinstance(answer["message_id"], str)
    assert question["message_id"] != answer["message_id"]
    assert answer["content"] == "Echo: What is 2 + 2?"
    assert utc_time(question["created_time"]) <= utc_time(answer["created_time"])


async def test_reply_metadata_describes_the_model(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    metadata = ok(await send(client, alice, session_id, "hi"))["ai_message"]["metadata"]
    assert (metadata["model_name"], metadata["model_version"]) == ("echo", "1")
    assert metadata["provider"] == "echo"
    assert metadata["finish_reason"] == "stop"
    latency = metadata["latency_ms"]
    assert isinstance(latency, int | float) and not isinstance(latency, bool) and latency >= 0
    usage = metadata["usage"]
    assert isinstance(usage["prompt_tokens"], int) and usage["prompt_tokens"] > 0
    assert isinstance(usage["completion_tokens"], int) and usage["completion_tokens"] > 0


async def test_history_is_oldest_first_with_total(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    sent = [ok(await send(client, alice, session_id, f"question {n}")) for n in range(3)]
    data = await _history(client, session_id, alice.headers)
    assert data["total"] == 6
    messages = data["messages"]
    expected_ids = [m for pair in sent for m in (pair["user_message"], pair["ai_message"])]
    assert [m["message_id"] for m in messages] == [m["message_id"] for m in expected_ids]
    assert [m["type"] for m in messages] == ["user", "ai"] * 3
    assert [m["content"] for m in messages[::2]] == ["question 0", "question 1", "question 2"]
    assert [m["content"] for m in messages[1::2]] == [f"Echo: question {n}" for n in range(3)]
    times = [utc_time(m["created_time"]) for m in messages]
    assert times == sorted(times)
    for message, pair in zip(messages[1::2], sent, strict=True):
        assert message["metadata"] == pair["ai_message"]["metadata"]
        assert message["created_time"] == pair["ai_message"]["created_time"]


async def test_the_model_is_asked_over_the_session_history(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    other_id = await create_session(client, alice)
    await send(client, alice, other_id, "elsewhere")
    counts = [
        ok(await send(client, alice, session_id, f"q{n}"))["ai_message"]["metadata"][
            "input_messages"
        ]
        for n in range(3)
    ]
    assert counts == [1, 3, 5]  # each question with everything said before in this session


async def test_a_new_session_has_no_history(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    await send(client, alice, await create_session(client, alice), "in another session")
    assert await _history(client, session_id, alice.headers) == {"messages": [], "total": 0}


METADATA: list[Any] = [
    {"client": "web", "tags": ["a", "b"], "score": 1.5, "nested": {"ok": True, "none": None}},
    "just a string",
    "",
    '你好 👋 "quoted" \\ backslash',
    42,
    [1, "two", {"three": 3}],
    True,
    None,
]


@pytest.mark.parametrize("metadata", METADATA, ids=repr)
async def test_user_metadata_comes_back_unchanged(
    client: httpx.AsyncClient, alice: Account, metadata: Any
) -> None:
    session_id = await create_session(client, alice)
    ok(await send(client, alice, session_id, "hi", metadata=metadata))
    question = (await _history(client, session_id, alice.headers))["messages"][0]
    assert question["type"] == "user"
    assert question["metadata"] == metadata
    assert type(question["metadata"]) is type(metadata)


async def test_metadata_may_be_left_out(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    body = {"user_id": alice.user_id, "message": "hi"}
    path = url(f"/sessions/{session_id}/messages")
    ok(await client.post(path, json=body, headers=alice.headers))
    assert (await _history(client, session_id, alice.headers))["messages"][0]["metadata"] is None


async def test_message_text_is_stored_exactly(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    text = "  line one\n\tline two — ünïcødé 🚀  "
    ok(await send(client, alice, session_id, text))
    assert (await _history(client, session_id, alice.headers))["messages"][0]["content"] == text


async def test_a_stranger_is_refused_at_once_while_a_reply_runs_in_the_session(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Not after waiting for the owner's turn: the session is not the stranger's at all."""
    slow = await make_config(parameters={"chunk_delay_ms": 500})  # three words: 1.5 s
    session_id = await create_session(client, alice, model_config_id=str(slow.id))
    owner = asyncio.create_task(send(client, alice, session_id, "slow question"))

    async def lease_taken() -> str | None:
        return (await ChatSession.get(id=session_id)).turn_token

    await eventually(lease_taken)

    stranger = await send(client, bob, session_id, "let me in")

    assert not owner.done()
    refused(stranger, 404)
    assert (await owner).status_code == 200
