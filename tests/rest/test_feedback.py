"""PUT /api/v1/messages/{message_id}/feedback: the caller's own rating of an AI message."""

from __future__ import annotations

from typing import Any

import httpx

from db.models import ChatSession, LogEntry, MessageFeedback
from db.services.feedback import MAX_NOTE_CHARS
from tests.factories import Account, create_session, send
from tests.rest.expect import ok, refused, url, utc_time
from tests.rest.openapi_check import fetch_document
from tests.rest.test_openapi_constraints import Document, body_probes
from tests.schema import gql

RATE = """
mutation($id: ID!, $input: RateMessageInput!) {
  rateMessage(id: $id, input: $input) { id feedback { rating note updatedAt } }
}"""
FEEDBACK = """
query($s: ID!) { session(id: $s) { messages(first: 10) { edges { node {
  id feedback { rating note updatedAt } } } } } }"""


async def exchange(client: httpx.AsyncClient, who: Account) -> tuple[str, str, str]:
    """A new session of one exchange: its id, the question's id, the reply's id."""
    session_id = await create_session(client, who)
    data = ok(await send(client, who, session_id, "hello"))
    return session_id, data["user_message"]["message_id"], data["ai_message"]["message_id"]


async def put(
    client: httpx.AsyncClient, who: Account, message_id: str, body: Any
) -> httpx.Response:
    return await client.put(url(f"/messages/{message_id}/feedback"), json=body, headers=who.headers)


async def seen_by_graphql(
    client: httpx.AsyncClient, who: Account, session_id: str, message_id: str
) -> dict[str, Any] | None:
    data = await gql.ok(client, FEEDBACK, who, {"s": session_id})
    nodes = [
        e["node"] for e in data["session"]["messages"]["edges"] if e["node"]["id"] == message_id
    ]
    assert len(nodes) == 1
    feedback: dict[str, Any] | None = nodes[0]["feedback"]
    return feedback


async def test_rate_change_and_clear(client: httpx.AsyncClient, alice: Account) -> None:
    _, _, reply = await exchange(client, alice)

    up = ok(await put(client, alice, reply, {"rating": "up", "note": "spot on"}))
    down = ok(await put(client, alice, reply, {"rating": "down", "note": None}))
    cleared = ok(await put(client, alice, reply, {"rating": None}))

    assert {k: v for k, v in up.items() if k != "updated_time"} == {
        "message_id": reply,
        "rating": "up",
        "note": "spot on",
    }
    assert (down["rating"], down["note"]) == ("down", None)
    assert utc_time(down["updated_time"]) >= utc_time(up["updated_time"])
    # Once cleared there is no rating, so no time it was set either.
    assert cleared == {"message_id": reply, "rating": None, "note": None, "updated_time": None}
    assert await MessageFeedback.filter(message_id=reply).count() == 0
    entries = [
        e
        for e in await LogEntry.filter(event="message.rated").order_by("id")
        if e.details and e.details["message_id"] == reply
    ]
    assert [(e.actor_id, e.details and e.details["rating"]) for e in entries] == [
        (alice.user_id, "up"),
        (alice.user_id, "down"),
        (alice.user_id, None),
    ]


async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, alice: Account
) -> None:
    _, question, reply = await exchange(client, alice)
    ok(await put(client, alice, reply, {"rating": "up", "note": "x" * MAX_NOTE_CHARS}))

    cases = [
        ({}, "rating"),  # null clears; leaving it out is a mistake
        ({"rating": "sideways"}, "rating"),
        ({"rating": "UP"}, "rating"),
        ({"rating": 1}, "rating"),
        ({"rating": "down", "note": "x" * (MAX_NOTE_CHARS + 1)}, "note"),
        ({"rating": "down", "note": "nul \x00 inside"}, "note"),
        ({"rating": "down", "note": 5}, "note"),
        ({"rating": None, "note": "a note without a rating"}, "note"),
    ]
    for body, field in cases:
        refused(await put(client, alice, reply, body), 400, field=field)
    refused(await put(client, alice, reply, ["up"]), 400, field="body")
    refused(await put(client, alice, question, {"rating": "up"}), 400, field="message_id")

    stored = await MessageFeedback.get(message_id=reply)
    assert (stored.rating.value, stored.note) == ("up", "x" * MAX_NOTE_CHARS)
    assert await MessageFeedback.filter(message_id=question).count() == 0


async def test_another_users_message_is_404_and_an_admin_rates_their_own(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id, question, reply = await exchange(client, alice)

    for message_id in (reply, question, "00000000-0000-0000-0000-000000000000", "nope"):
        refused(await put(client, bob, message_id, {"rating": "down"}), 404)
    ok(await put(client, alice, reply, {"rating": "up"}))
    by_admin = ok(await put(client, admin, reply, {"rating": "down", "note": "meh"}))

    assert (by_admin["rating"], by_admin["note"]) == ("down", "meh")
    assert (await seen_by_graphql(client, alice, session_id, reply) or {})["rating"] == "UP"
    assert (await seen_by_graphql(client, admin, session_id, reply) or {})["rating"] == "DOWN"
    assert await MessageFeedback.filter(message_id=reply, user_id=bob.user_id).count() == 0


async def test_rest_and_graphql_give_the_same_answer(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    session_id, question, reply = await exchange(client, alice)

    by_rest = ok(await put(client, alice, reply, {"rating": "down", "note": "too long"}))
    read = await seen_by_graphql(client, alice, session_id, reply)
    assert read == {
        "rating": by_rest["rating"].upper(),
        "note": by_rest["note"],
        "updatedAt": by_rest["updated_time"],
    }

    by_graphql = await gql.ok(client, RATE, alice, {"id": reply, "input": {"rating": "UP"}})
    rated = by_graphql["rateMessage"]["feedback"]
    assert rated == await seen_by_graphql(client, alice, session_id, reply)
    again = ok(await put(client, alice, reply, {"rating": "up"}))
    assert (again["rating"], again["note"]) == (rated["rating"].lower(), rated["note"])

    # Refusals agree too.
    refused(await put(client, alice, question, {"rating": "up"}), 400, field="message_id")
    variables = {"id": question, "input": {"rating": "UP"}}
    await gql.fails(client, RATE, alice, variables, code="BAD_USER_INPUT")
    refused(await put(client, bob, reply, {"rating": "up"}), 404)
    variables = {"id": reply, "input": {"rating": "UP"}}
    await gql.fails(client, RATE, bob, variables, code="NOT_FOUND")


async def test_feedback_goes_with_its_session(client: httpx.AsyncClient, alice: Account) -> None:
    session_id, _, reply = await exchange(client, alice)
    ok(await put(client, alice, reply, {"rating": "up", "note": "keep?"}))

    await ChatSession.filter(id=session_id).delete()

    assert await MessageFeedback.filter(message_id=reply).count() == 0
    refused(await put(client, alice, reply, {"rating": "up"}), 404)


async def test_every_body_constraint_of_the_document_holds_at_its_edges(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """What the OpenAPI document calls valid is accepted, the rest refused naming the field."""
    _, _, reply = await exchange(client, alice)
    document = Document(await fetch_document(client))
    ref = "#/components/schemas/FeedbackBody"
    checked = 0
    # The fields one at a time, beside a rating, then beside a null rating.
    probes = [
        *body_probes(document, ref, {"rating": "up"}),
        *body_probes(document, ref, {"rating": None}),
    ]
    verdicts = set()
    for probe in probes:
        answer = await put(client, alice, reply, probe.body)
        valid = document.valid(probe.body, {"$ref": ref})
        verdicts.add((probe.field, valid))
        if valid:
            assert answer.status_code == 200, (probe, answer.text)
        else:
            refused(answer, 400, field=None if probe.field == "body" else probe.field)
        checked += 1
    assert checked > 60
    assert {("note", True), ("note", False), ("rating", True), ("rating", False)} <= verdicts
