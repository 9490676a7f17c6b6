"""The lookups behind Message.feedback and Message.variants: only what the caller may see,
only AI messages."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from db.models import MessageFeedback, Rating
from db.services import users, variants
from db.services.feedback import for_messages
from tests.factories import Account, create_session, send


async def test_variants_of_follow_the_ownership_rule_and_skip_user_messages(
    app: Starlette, client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id = await create_session(client, alice)
    data = (await send(client, alice, session_id, "hello")).json()["data"]
    question, reply = data["user_message"]["message_id"], data["ai_message"]["message_id"]
    asked = [reply, question, "00000000-0000-0000-0000-000000000000", "not-an-id"]

    as_alice = await variants.variants_of(
        caller=await users.authenticate(token=alice.key), message_ids=asked
    )
    as_bob = await variants.variants_of(
        caller=await users.authenticate(token=bob.key), message_ids=asked
    )
    as_admin = await variants.variants_of(
        caller=await users.authenticate(token=admin.key), message_ids=asked
    )

    assert {k: [str(m.id) for m in v] for k, v in as_alice.items()} == {
        reply: [reply],
        question: [],
        asked[2]: [],
        asked[3]: [],
    }
    assert as_bob == {key: [] for key in asked}
    assert [str(m.id) for m in as_admin[reply]] == [reply]


async def test_ratings_are_read_for_ai_messages_only(
    app: Starlette, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    session_id = await create_session(client, alice)
    data = (await send(client, alice, session_id, "hello")).json()["data"]
    question, reply = data["user_message"]["message_id"], data["ai_message"]["message_id"]
    # Rows no door would write (a user message rated), and another user's rating.
    await MessageFeedback.create(message_id=question, user_id=alice.user_id, rating=Rating.UP)
    await MessageFeedback.create(message_id=reply, user_id=alice.user_id, rating=Rating.DOWN)
    await MessageFeedback.create(message_id=reply, user_id=bob.user_id, rating=Rating.UP)

    mine = await for_messages(user_id=alice.user_id, message_ids=[question, reply, "x"])
    theirs = await for_messages(user_id=bob.user_id, message_ids=[question, reply])

    assert {k: v.rating for k, v in mine.items()} == {reply: Rating.DOWN}
    assert {k: v.rating for k, v in theirs.items()} == {reply: Rating.UP}
    assert await for_messages(user_id=alice.user_id, message_ids=[]) == {}
