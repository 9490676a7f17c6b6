"""rateMessage and the Message fields feedback, replyTo and variants, through the GraphQL door."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import ChatSession, LogEntry, Message, MessageFeedback
from db.services.feedback import MAX_NOTE_CHARS
from tests.conftest import BACKEND
from tests.factories import Account, create_session, read_history, send
from tests.schema.gql import fails, ok
from tests.schema.statements import counted

RATE = """
mutation($id: ID!, $input: RateMessageInput!) {
  rateMessage(id: $id, input: $input) { id type content feedback { rating note updatedAt } }
}"""
HISTORY = """
query($s: ID!) { session(id: $s) { messageCount messages(first: 100) { edges { node {
  id type content feedback { rating note updatedAt } replyTo { id type content }
  variants { id content replyTo { id } feedback { rating } }
} } } } }"""
COUNT = "query($s: ID!) { session(id: $s) { messageCount } }"
REGENERATE = "mutation($s: ID!) { regenerateReply(input: {sessionId: $s}) { id content } }"


async def exchange(
    client: httpx.AsyncClient, who: Account, session_id: str, text: str
) -> tuple[str, str]:
    """Send `text` (REST); the ids of the user message and of its reply."""
    response = await send(client, who, session_id, text)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return data["user_message"]["message_id"], data["ai_message"]["message_id"]


async def rated_session(client: httpx.AsyncClient, who: Account) -> tuple[str, str, str]:
    """A session of one exchange: its id, the question's id, the reply's id."""
    session_id = await create_session(client, who)
    question, reply = await exchange(client, who, session_id, "hello")
    return session_id, question, reply


async def rate(
    client: httpx.AsyncClient, who: Account, message_id: str, **input: Any
) -> dict[str, Any]:
    data = await ok(client, RATE, who, {"id": message_id, "input": input})
    rated: dict[str, Any] = data["rateMessage"]
    return rated


async def nodes(client: httpx.AsyncClient, who: Account, session_id: str) -> list[dict[str, Any]]:
    data = await ok(client, HISTORY, who, {"s": session_id})
    return [edge["node"] for edge in data["session"]["messages"]["edges"]]


async def feedback_seen(
    client: httpx.AsyncClient, who: Account, session_id: str, message_id: str
) -> dict[str, Any] | None:
    found = [node for node in await nodes(client, who, session_id) if node["id"] == message_id]
    assert len(found) == 1
    feedback: dict[str, Any] | None = found[0]["feedback"]
    return feedback


async def rated_entries(message_id: str) -> list[LogEntry]:
    entries = await LogEntry.filter(event="message.rated").order_by("id")
    return [e for e in entries if (e.details or {}).get("message_id") == message_id]


async def test_rate_up_change_to_down_and_clear(client: httpx.AsyncClient, alice: Account) -> None:
    session_id, _, reply = await rated_session(client, alice)

    up = await rate(client, alice, reply, rating="UP", note="clear and short")
    assert (up["id"], up["type"]) == (reply, "AI")
    assert (up["feedback"]["rating"], up["feedback"]["note"]) == ("UP", "clear and short")
    assert await feedback_seen(client, alice, session_id, reply) == up["feedback"]

    down = await rate(client, alice, reply, rating="DOWN")
    assert (down["feedback"]["rating"], down["feedback"]["note"]) == ("DOWN", None)
    changed_at = datetime.fromisoformat(down["feedback"]["updatedAt"])
    assert changed_at >= datetime.fromisoformat(up["feedback"]["updatedAt"])
    assert await feedback_seen(client, alice, session_id, reply) == down["feedback"]
    assert await MessageFeedback.filter(message_id=reply).count() == 1  # changed, not added

    cleared = await rate(client, alice, reply, rating=None)
    assert cleared["feedback"] is None
    assert await feedback_seen(client, alice, session_id, reply) is None
    assert await MessageFeedback.filter(message_id=reply).count() == 0
    # Clearing what is not there is no error: the rating is simply absent.
    assert (await rate(client, alice, reply))["feedback"] is None

    entries = await rated_entries(reply)
    assert [e.details["rating"] for e in entries if e.details] == ["up", "down", None, None]
    assert {e.actor_id for e in entries} == {alice.user_id}
    assert [e.details["has_note"] for e in entries if e.details] == [True, False, False, False]
    assert all(e.details and e.details["session_id"] == session_id for e in entries)
    assert all("clear and short" not in e.message for e in entries)  # the note stays private


async def test_note_rules(client: httpx.AsyncClient, alice: Account) -> None:
    session_id, _, reply = await rated_session(client, alice)
    longest = "é" * MAX_NOTE_CHARS

    assert (await rate(client, alice, reply, rating="UP", note=longest))["feedback"][
        "note"
    ] == longest
    before = await feedback_seen(client, alice, session_id, reply)
    refusals = [
        {"rating": "DOWN", "note": longest + "x"},
        {"rating": "DOWN", "note": "a\x00b"},
        {"rating": None, "note": "a note without a rating"},
        {"note": "a note without a rating"},
    ]
    for input in refusals:
        error = await fails(
            client, RATE, alice, {"id": reply, "input": input}, code="BAD_USER_INPUT"
        )
        assert error["extensions"]["field"] == "note", (input, error)
    # Nothing refused was stored.
    assert await feedback_seen(client, alice, session_id, reply) == before
    # Blank text is no note, with or without a rating.
    assert (await rate(client, alice, reply, rating="DOWN", note=" \n\t"))["feedback"][
        "note"
    ] is None
    assert (await rate(client, alice, reply, rating=None, note="   "))["feedback"] is None


async def test_a_user_message_cannot_be_rated(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    session_id, question, _ = await rated_session(client, alice)

    error = await fails(
        client, RATE, alice, {"id": question, "input": {"rating": "UP"}}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == "id"
    assert await MessageFeedback.filter(message_id=question).count() == 0
    # Another user learns nothing about it, not even its type.
    variables = {"id": question, "input": {"rating": "UP"}}
    await fails(client, RATE, bob, variables, code="NOT_FOUND")
    question_node = (await nodes(client, alice, session_id))[0]
    assert question_node["feedback"] is None
    assert question_node["replyTo"] is None
    assert question_node["variants"] == []


async def test_only_the_sessions_owner_or_an_admin_may_rate(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id, _, reply = await rated_session(client, alice)

    for message_id in (reply, "00000000-0000-0000-0000-000000000000", "not-an-id", ""):
        variables = {"id": message_id, "input": {"rating": "DOWN"}}
        await fails(client, RATE, bob, variables, code="NOT_FOUND")
    assert await MessageFeedback.filter(message_id=reply).count() == 0
    assert await rated_entries(reply) == []

    by_alice = await rate(client, alice, reply, rating="UP", note="mine")
    by_admin = await rate(client, admin, reply, rating="DOWN", note="the admin's")

    # Each sees their own rating only.
    assert (by_alice["feedback"]["rating"], by_admin["feedback"]["rating"]) == ("UP", "DOWN")
    assert (await feedback_seen(client, alice, session_id, reply) or {})["note"] == "mine"
    assert (await feedback_seen(client, admin, session_id, reply) or {})["note"] == "the admin's"
    assert await MessageFeedback.filter(message_id=reply).count() == 2
    assert [e.actor_id for e in await rated_entries(reply)] == [alice.user_id, admin.user_id]
    # The admin clearing theirs leaves alice's.
    await rate(client, admin, reply, rating=None)
    assert (await feedback_seen(client, alice, session_id, reply) or {})["rating"] == "UP"
    assert await feedback_seen(client, admin, session_id, reply) is None


async def test_feedback_goes_with_its_session(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id, _, reply = await rated_session(client, alice)
    kept_session, _, kept_reply = await rated_session(client, alice)
    await rate(client, alice, reply, rating="UP", note="gone soon")
    await rate(client, admin, reply, rating="DOWN")
    await rate(client, alice, kept_reply, rating="DOWN")

    await ChatSession.filter(id=session_id).delete()

    assert await MessageFeedback.filter(message_id=reply).count() == 0
    assert await MessageFeedback.filter(message_id=kept_reply).count() == 1
    await fails(client, RATE, alice, {"id": reply, "input": {"rating": "UP"}}, code="NOT_FOUND")
    assert (await feedback_seen(client, alice, kept_session, kept_reply) or {})["rating"] == "DOWN"


async def test_regenerated_replies_are_variants_of_each_other(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    session_id = await create_session(client, alice)
    first_q, first_reply = await exchange(client, alice, session_id, "first")
    question, original = await exchange(client, alice, session_id, "second")
    before = await read_history(client, alice, session_id)
    again = (await ok(client, REGENERATE, alice, {"s": session_id}))["regenerateReply"]["id"]
    latest = (await ok(client, REGENERATE, alice, {"s": session_id}))["regenerateReply"]["id"]
    await rate(client, alice, original, rating="DOWN")  # a replaced reply can still be rated

    history = await nodes(client, alice, session_id)
    after = await read_history(client, alice, session_id)

    # The history keeps its length and order; the latest reply stands in the old one's place.
    assert [n["id"] for n in history] == [first_q, first_reply, question, latest]
    assert after["total"] == before["total"] == 4
    assert [m["message_id"] for m in after["messages"]] == [first_q, first_reply, question, latest]
    count = await ok(client, COUNT, alice, {"s": session_id})
    assert count["session"]["messageCount"] == 4
    current = history[3]
    assert current["replyTo"] == {"id": question, "type": "USER", "content": "second"}
    # Oldest first, itself included, every one answering the same question.
    assert [v["id"] for v in current["variants"]] == [original, again, latest]
    assert [v["replyTo"] for v in current["variants"]] == [{"id": question}] * 3
    assert [v["feedback"] for v in current["variants"]] == [{"rating": "DOWN"}, None, None]
    # An earlier reply is untouched by the regeneration of a later one.
    assert [v["id"] for v in history[1]["variants"]] == [first_reply]
    assert history[1]["replyTo"]["id"] == first_q
    # The owner's variants are nobody else's business.
    assert (await ok(client, HISTORY, bob, {"s": session_id}))["session"] is None


async def test_variants_are_ordered_by_time_then_id(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Replies stored at the same moment come in id order (the regenerated situation is
    written directly: the times are chosen)."""
    session_id = await create_session(client, alice)
    question, reply = await exchange(client, alice, session_id, "hello")
    stored = await Message.get(id=reply)
    ids = ["ffffffff-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000000"]
    await Message.filter(id=reply).update(seq=None)
    for number, message_id in enumerate(ids):
        await Message.create(
            id=message_id,
            session_id=session_id,
            seq=stored.seq if number == len(ids) - 1 else None,
            type=stored.type,
            content=f"variant {number}",
            metadata=stored.metadata,
            created_at=stored.created_at,  # the same moment as the original
            reply_to_id=question,
        )
    history = await nodes(client, alice, session_id)

    assert [n["id"] for n in history] == [question, ids[-1]]
    expected = sorted([reply, *ids])  # all stored at one moment: by id
    assert [v["id"] for v in history[1]["variants"]] == expected


# A page of 50 messages with everything this feature adds, and the same page of 4.
PAGE = """
query($s: ID!) { session(id: $s) { messages(first: 50) { edges { node {
  id feedback { rating note } replyTo { id content } variants { id feedback { rating } }
} } } } }"""
# The session, the message window, the page's ratings, questions (replyTo) and variants,
# then the variants' ratings; and the key (with its user), unless the server keeps
# verified keys (AUTH_CACHE_SECONDS).
PAGE_STATEMENTS = 6


async def _page_statements(
    client: httpx.AsyncClient, who: Account, session_id: str, caplog: pytest.LogCaptureFixture
) -> tuple[list[str], list[dict[str, Any]]]:
    await ok(client, "{ me { id } }", who)  # the key's last-used time is now fresh
    async with counted(caplog) as statements:
        data = await ok(client, PAGE, who, {"s": session_id})
    return statements, [edge["node"] for edge in data["session"]["messages"]["edges"]]


async def test_a_page_of_messages_costs_a_constant_number_of_statements(
    app: Starlette,
    client: httpx.AsyncClient,
    strawberry_client: httpx.AsyncClient,
    alice: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    small = await create_session(client, alice)
    large = await create_session(client, alice)
    for session_id, turns in ((small, 2), (large, 25)):
        for turn in range(turns):
            _, reply = await exchange(client, alice, session_id, f"turn {turn}")
            if turn % 2 == 0:
                await rate(client, alice, reply, rating="UP", note=f"note {turn}")
        await ok(client, REGENERATE, alice, {"s": session_id})

    small_statements, small_nodes = await _page_statements(strawberry_client, alice, small, caplog)
    large_statements, large_nodes = await _page_statements(strawberry_client, alice, large, caplog)

    expected = PAGE_STATEMENTS + (app.state.settings.key_cache_seconds == 0)
    assert len(small_statements) == len(large_statements) == expected, (
        small_statements,
        large_statements,
    )
    assert (len(small_nodes), len(large_nodes)) == (4, 50)
    replies = large_nodes[1::2]
    assert [bool(n["feedback"]) for n in replies[:-1]] == [t % 2 == 0 for t in range(24)]
    assert all(
        n["replyTo"]["id"] == q["id"] for q, n in zip(large_nodes[::2], replies, strict=True)
    )
    assert [len(n["variants"]) for n in replies] == [1] * 24 + [2]
    assert replies[-1]["variants"][0]["feedback"] == {"rating": "UP"}  # turn 24, replaced
    assert replies[-1]["feedback"] is None  # the regenerated reply is not rated yet


NEW_FIELDS = """
query($s: ID!) { session(id: $s) { messages { edges { node {
  feedback { rating } variants { id } replyTo { id }
} } } } }"""


async def test_the_new_fields_read_the_same_with_and_without_the_fast_path(
    client: httpx.AsyncClient, strawberry_client: httpx.AsyncClient, alice: Account
) -> None:
    """On PostgreSQL `client` is served by the compiled read path, which hands documents
    with these fields to Strawberry; `strawberry_client` always uses Strawberry."""
    session_id = await create_session(client, alice)
    question, original = await exchange(client, alice, session_id, "hello")
    await rate(client, alice, original, rating="DOWN")
    regenerated = (await ok(client, REGENERATE, alice, {"s": session_id}))["regenerateReply"]["id"]
    await rate(client, alice, regenerated, rating="UP")
    expected = [
        {"feedback": None, "variants": [], "replyTo": None},
        {
            "feedback": {"rating": "UP"},
            "variants": [{"id": original}, {"id": regenerated}],
            "replyTo": {"id": question},
        },
    ]

    for reader in (client, strawberry_client):
        data = await ok(reader, NEW_FIELDS, alice, {"s": session_id})
        assert [e["node"] for e in data["session"]["messages"]["edges"]] == expected, BACKEND
