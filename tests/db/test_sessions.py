"""db.services.sessions and titles: the rules under both doors (titles, update, delete)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise

from db.errors import Invalid, NotFound
from db.models import ChatSession, Message, MessageFeedback, Rating, ReplyStream, UsageRecord
from db.ports import Runtime
from db.services import leases, sessions, titles, users
from tests.factories import Account, create_session, send


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("hi", "hi"),
        ("\n \n\t  two   words  \nnext", "two words"),
        ("a\u00a0b\u3000c", "a b c"),  # any Unicode blank collapses
        ("w" * 60, "w" * 60),
        ("w" * 61, "w" * 59 + "…"),
        ("word " * 20, "word " * 11 + "word…"),
        ("a" * 58 + " bcd", "a" * 58 + "…"),  # the word that does not fit goes whole
        ("x" * 59 + " tail", "x" * 59 + "…"),  # a word ending at 59 characters stays
        (" \n\t ", None),
        ("", None),
    ],
)
def test_generated_titles(content: str, title: str | None) -> None:
    generated = titles.generated(content)
    assert generated == title
    assert generated is None or len(generated) <= titles.GENERATED_TITLE_CHARS


@pytest.mark.parametrize(
    ("title", "problem"),
    [
        ("", "must not be empty"),
        (" \u3000\n", "must not be empty"),
        ("x" * 201, "at most 200"),
        ("a\x00", "NUL"),
        ("\ud800", "surrogate"),
        (7, "must be a string"),
    ],
)
def test_checked_titles_name_the_field(title: object, problem: str) -> None:
    with pytest.raises(Invalid) as refused:
        titles.checked(title)
    assert refused.value.field == "title"
    assert problem in refused.value.reason


def test_checked_titles_are_kept_as_given() -> None:
    assert titles.checked(None) is None
    assert titles.checked(" x" * 100) == " x" * 100


@pytest.fixture
def runtime(app: Starlette) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def test_update_needs_a_field_and_leaves_the_others(
    client: httpx.AsyncClient, alice: Account
) -> None:
    caller = await users.authenticate(token=alice.key)
    session_id = await create_session(client, alice)
    await sessions.update(caller=caller, session_id=session_id, title="T", archived=True)

    with pytest.raises(Invalid) as nothing:
        await sessions.update(caller=caller, session_id=session_id)
    kept = await sessions.update(caller=caller, session_id=session_id, archived=False)

    assert nothing.value.field == "changes"
    assert (kept.title, kept.archived) == ("T", False)
    stored = await ChatSession.get(id=session_id)
    assert (stored.title, stored.archived, stored.updated_at) == ("T", False, kept.updated_at)


async def test_delete_takes_everything_of_the_session_in_one_go(
    client: httpx.AsyncClient, alice: Account, runtime: Runtime
) -> None:
    """Messages, their feedback, reply buffers and the search index go with the session;
    usage stays (it is counted, not owned)."""
    caller = await users.authenticate(token=alice.key)
    session_id = await create_session(client, alice)
    kept = await create_session(client, alice)
    for target in (session_id, session_id, kept):
        assert (await send(client, alice, target, "searchable words")).status_code == 200
    reply = await Message.filter(session_id=session_id, type="ai").first()
    assert reply is not None
    await MessageFeedback.create(message_id=reply.id, user_id=alice.user_id, rating=Rating.UP)
    await ReplyStream.create(
        session_id=session_id, expires_at=datetime.now(UTC) + timedelta(minutes=1)
    )
    usage_before = await UsageRecord.filter(session_id=session_id).count()

    assert await sessions.delete(runtime=runtime, caller=caller, session_id=session_id) == (
        session_id
    )

    assert not await ChatSession.exists(id=session_id)
    assert await Message.filter(session_id=session_id).count() == 0
    assert await MessageFeedback.filter(message_id=reply.id).count() == 0
    assert await ReplyStream.filter(session_id=session_id).count() == 0
    assert await UsageRecord.filter(session_id=session_id).count() == usage_before == 2
    assert await Message.filter(session_id=kept).count() == 2
    connection = Tortoise.get_connection("default")
    if connection.capabilities.dialect == "sqlite":
        # The full-text index is kept by triggers, which the cascade fires too.
        rows = await connection.execute_query_dict(
            "SELECT count(*) AS n FROM message_search_ids", []
        )
        indexed = await connection.execute_query_dict(
            "SELECT count(*) AS n FROM message_search", []
        )
        assert rows[0]["n"] == indexed[0]["n"] == 2  # the kept session's messages only
    with pytest.raises(NotFound):
        await sessions.delete(runtime=runtime, caller=caller, session_id=session_id)


async def test_a_turn_waiting_for_a_deleted_session_ends_not_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Another process's turn holds the session, a turn here waits for it, and the session
    is deleted meanwhile: the waiter learns it is gone instead of waiting until Busy."""
    session_id = await create_session(client, alice)
    await ChatSession.filter(id=session_id).update(
        turn_token="other-process", turn_expires_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    entered = False

    async def wait_for_it() -> None:
        nonlocal entered
        async with leases.exclusive(session_id, wait_seconds=60, lease_seconds=30):
            entered = True

    waiting = asyncio.create_task(wait_for_it())
    await asyncio.sleep(0.05)  # let it try once (nothing is asserted on time)
    await ChatSession.filter(id=session_id).delete()

    with pytest.raises(NotFound):
        await waiting
    assert not entered
