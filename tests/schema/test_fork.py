"""forkSession: branching keeps the history up to a message, editing sends new content in
its place; the original session is untouched, retries create nothing twice, and a long
history is copied in a bounded number of statements."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tortoise import Tortoise

from db.models import ChatSession, Message
from tests.factories import Account, make_config, read_all_messages, read_history
from tests.providers import FlakyProvider
from tests.schema.gql import fails, new_session, ok, send_gql
from tests.schema.statements import counted

FORK = """
mutation($input: ForkSessionInput!) {
  forkSession(input: $input) {
    session { id title messageCount modelConfig { id } user { id } }
    userMessage { id type content }
    aiMessage { id type content }
  }
}"""
REGENERATE = "mutation($i: RegenerateReplyInput!) { regenerateReply(input: $i) { id } }"
LOGS = "{ logs(first: 100) { edges { node { event actorId details } } } }"


async def fork(
    client: httpx.AsyncClient, who: Account, message_id: str, **extra: Any
) -> dict[str, Any]:
    data = await ok(client, FORK, who, {"input": {"messageId": message_id, **extra}})
    payload: dict[str, Any] = data["forkSession"]
    return payload


async def conversation(client: httpx.AsyncClient, who: Account, *questions: str) -> str:
    session_id = await new_session(client, who)
    for question in questions:
        await send_gql(client, who, session_id, question)
    return session_id


def contents(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["type"], m["content"]) for m in history["messages"]]


async def test_branching_keeps_the_history_up_to_the_message(
    client: httpx.AsyncClient, alice: Account
) -> None:
    source = await conversation(client, alice, "first question\nwith details", "second", "third")
    before = await read_history(client, alice, source)
    at = before["messages"][3]  # the reply to "second"

    made = await fork(client, alice, at["message_id"])

    assert made["userMessage"] is None and made["aiMessage"] is None
    forked = made["session"]
    assert forked["id"] != source
    assert forked["messageCount"] == 4
    assert forked["title"] == "first question"
    assert forked["user"]["id"] == alice.user_id
    history = await read_history(client, alice, forked["id"])
    assert contents(history) == contents(before)[:4]
    # Copies: new ids, each reply linked to the fork's own copy of its question.
    assert not {m["message_id"] for m in history["messages"]} & {
        m["message_id"] for m in before["messages"]
    }
    copies = {str(m.id): m for m in await Message.filter(session_id=forked["id"])}
    for message in copies.values():
        if message.type == "ai":
            assert str(message.reply_to_id) in copies
            assert copies[str(message.reply_to_id)].seq == message.position - 1
    assert str((await ChatSession.get(id=forked["id"])).forked_from_id) == at["message_id"]
    assert await read_history(client, alice, source) == before


async def test_editing_sends_the_new_content_in_the_messages_place(
    client: httpx.AsyncClient, alice: Account
) -> None:
    source = await conversation(client, alice, "one", "two", "three")
    before = await read_history(client, alice, source)
    edited = before["messages"][2]  # the user message "two"

    made = await fork(client, alice, edited["message_id"], content="two, better")

    assert made["userMessage"]["content"] == "two, better"
    assert made["aiMessage"]["type"] == "AI"
    assert made["session"]["messageCount"] == 4
    history = await read_history(client, alice, made["session"]["id"])
    assert contents(history) == [
        *contents(before)[:2],
        ("user", "two, better"),
        ("ai", made["aiMessage"]["content"]),
    ]
    assert await read_history(client, alice, source) == before


async def test_editing_the_first_message_titles_the_fork_from_the_new_content(
    client: httpx.AsyncClient, alice: Account
) -> None:
    source = await conversation(client, alice, "old start")
    first = (await read_history(client, alice, source))["messages"][0]

    made = await fork(client, alice, first["message_id"], content="a new beginning")

    assert made["session"]["title"] == "a new beginning"
    history = await read_history(client, alice, made["session"]["id"])
    assert history["messages"][0]["content"] == "a new beginning"
    assert history["total"] == 2


async def test_only_a_user_message_can_be_edited(client: httpx.AsyncClient, alice: Account) -> None:
    source = await conversation(client, alice, "one")
    reply = (await read_history(client, alice, source))["messages"][1]

    error = await fails(
        client,
        FORK,
        alice,
        {"input": {"messageId": reply["message_id"], "content": "no"}},
        code="BAD_USER_INPUT",
    )

    assert error["extensions"]["field"] == "messageId"


@pytest.mark.parametrize("content", ["", "   "])
async def test_blank_content_is_refused(
    client: httpx.AsyncClient, alice: Account, content: str
) -> None:
    source = await conversation(client, alice, "one")
    first = (await read_history(client, alice, source))["messages"][0]

    error = await fails(
        client,
        FORK,
        alice,
        {"input": {"messageId": first["message_id"], "content": content}},
        code="BAD_USER_INPUT",
    )

    assert error["extensions"]["field"] == "content"
    assert await ChatSession.filter(user_id=alice.user_id).count() == 1


async def test_others_messages_are_not_found_and_an_admin_forks_for_themselves(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    source = await conversation(client, alice, "one")
    first = (await read_history(client, alice, source))["messages"][0]

    await fails(client, FORK, bob, {"input": {"messageId": first["message_id"]}}, code="NOT_FOUND")
    await fails(client, FORK, bob, {"input": {"messageId": str(uuid.uuid4())}}, code="NOT_FOUND")
    made = await fork(client, admin, first["message_id"])

    assert made["session"]["user"]["id"] == admin.user_id
    assert await ChatSession.filter(user_id=bob.user_id).count() == 0


async def test_a_retry_with_the_same_key_makes_one_fork(
    client: httpx.AsyncClient, alice: Account
) -> None:
    source = await conversation(client, alice, "one", "two")
    second = (await read_history(client, alice, source))["messages"][2]

    once = await fork(client, alice, second["message_id"], content="2", clientMessageId="f1")
    twice = await fork(client, alice, second["message_id"], content="2", clientMessageId="f1")

    assert twice["session"]["id"] == once["session"]["id"]
    assert twice["userMessage"]["id"] == once["userMessage"]["id"]
    assert twice["aiMessage"]["id"] == once["aiMessage"]["id"]
    assert await ChatSession.filter(user_id=alice.user_id).count() == 2
    error = await fails(
        client,
        FORK,
        alice,
        {"input": {"messageId": second["message_id"], "content": "3", "clientMessageId": "f1"}},
        code="BAD_USER_INPUT",
    )
    assert error["extensions"]["field"] == "clientMessageId"


async def test_a_model_failure_keeps_the_fork_and_a_retry_answers(
    client: httpx.AsyncClient, alice: Account, flaky: FlakyProvider
) -> None:
    config = await make_config(provider="flaky", model_name="flaky")
    source = await new_session(client, alice, str(config.id))
    await send_gql(client, alice, source, "one")
    first = (await read_history(client, alice, source))["messages"][0]
    flaky.fail_next()
    request = {"messageId": first["message_id"], "content": "uno", "clientMessageId": "e1"}

    await fails(client, FORK, alice, {"input": request}, code="INTERNAL_SERVER_ERROR")
    kept = await ChatSession.get(user_id=alice.user_id, fork_key="e1")
    assert contents(await read_history(client, alice, str(kept.id))) == [("user", "uno")]
    made = await fork(client, alice, first["message_id"], content="uno", clientMessageId="e1")

    assert made["session"]["id"] == str(kept.id)
    assert made["aiMessage"]["content"]
    assert (await read_history(client, alice, str(kept.id)))["total"] == 2


async def test_branching_at_a_replaced_reply_keeps_that_variant(
    client: httpx.AsyncClient, alice: Account
) -> None:
    source = await conversation(client, alice, "one")
    replaced = (await read_history(client, alice, source))["messages"][1]
    await ok(client, REGENERATE, alice, {"i": {"sessionId": source}})

    made = await fork(client, alice, replaced["message_id"])

    history = await read_history(client, alice, made["session"]["id"])
    assert history["total"] == 2
    assert history["messages"][1]["content"] == replaced["content"]
    copied = await Message.get(id=history["messages"][1]["message_id"])
    assert copied.seq == 2


async def test_the_fork_is_logged_with_its_actor(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    source = await conversation(client, alice, "one")
    first = (await read_history(client, alice, source))["messages"][0]

    made = await fork(client, alice, first["message_id"])

    entries = [e["node"] for e in (await ok(client, LOGS, admin))["logs"]["edges"]]
    forked = [e for e in entries if e["event"] == "session.forked"]
    assert [(e["actorId"], e["details"]["session_id"]) for e in forked] == [
        (alice.user_id, made["session"]["id"])
    ]
    assert forked[0]["details"]["source_session_id"] == source


async def seed_long_session(session_id: str, turns: int) -> None:
    """`turns` question-reply pairs written straight to the database (fast)."""
    connection = Tortoise.get_connection("default")
    postgres = connection.capabilities.dialect == "postgres"
    start = datetime.now(UTC) - timedelta(days=1)
    rows: list[list[Any]] = []
    for turn in range(turns):
        question, reply = uuid.uuid4(), uuid.uuid4()
        at = start + timedelta(seconds=turn)
        rows.append([question, session_id, 2 * turn + 1, "user", f"question {turn}", at, None])
        rows.append([reply, session_id, 2 * turn + 2, "ai", f"answer {turn}", at, question])
    columns = "id, session_id, seq, type, content, created_at, reply_to_id"
    if postgres:
        marks = "$1, $2, $3, $4, $5, $6, $7"
    else:
        marks = "?, ?, ?, ?, ?, ?, ?"
        rows = [[str(v) if isinstance(v, uuid.UUID) else v for v in row] for row in rows]
    await connection.execute_many(f"INSERT INTO messages ({columns}) VALUES ({marks})", rows)
    await ChatSession.filter(id=session_id).update(last_seq=2 * turns)


async def test_forking_a_long_session_takes_a_bounded_number_of_statements(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    source = await new_session(client, alice)
    await seed_long_session(source, 5_000)  # 10,000 messages
    at = await Message.get(session_id=source, seq=9_999)  # the last question

    async with counted(caplog) as statements:
        made = await fork(client, alice, str(at.id))

    assert made["session"]["messageCount"] == 9_999
    writes = [s for s in statements if s.split(None, 1)[0].upper() in ("WITH", "INSERT", "UPDATE")]
    assert len(statements) <= 12, statements
    assert len(writes) <= 4, writes
    copied = await read_all_messages(client, alice, made["session"]["id"])
    original = await read_all_messages(client, alice, source)
    assert [(m["type"], m["content"]) for m in copied] == [
        (m["type"], m["content"]) for m in original[:9_999]
    ]
    page = {"page_size": 20, "page_num": 300}
    deep = await client.get(
        f"/api/v1/sessions/{made['session']['id']}/messages", params=page, headers=alice.headers
    )
    deep_source = await client.get(
        f"/api/v1/sessions/{source}/messages", params=page, headers=alice.headers
    )
    assert [m["content"] for m in deep.json()["data"]["messages"]] == [
        m["content"] for m in deep_source.json()["data"]["messages"]
    ]
