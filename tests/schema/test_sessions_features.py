"""Sessions through GraphQL: titles, archive, delete, the `sessions(archived:)` filter, the
new ChatSession fields (title, updatedAt, archived, forkedFrom), and the logs they write."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from db.models import ChatSession, LogEntry, Message
from tests.factories import Account, create_session, make_config, send
from tests.schema.gql import fails, new_session, ok, send_gql
from tests.schema.test_cancellation import QUESTION, slow_session, start_and_read, text_of
from tests.schema.ws import TransportWS
from tests.servers import LiveServer

SESSION_FIELDS = "id title createdAt updatedAt archived messageCount modelConfig { id }"
UPDATE = f"""
mutation($id: ID!, $input: UpdateSessionInput!) {{
  updateSession(id: $id, input: $input) {{ {SESSION_FIELDS} }}
}}"""
DELETE = "mutation($id: ID!) { deleteSession(id: $id) }"
ONE = f"query($id: ID!) {{ session(id: $id) {{ {SESSION_FIELDS} }} }}"
LIST = """
query($archived: Boolean, $first: Int, $after: String, $u: ID) {
  sessions(archived: $archived, first: $first, after: $after, userId: $u) {
    totalCount edges { cursor node { id title archived } }
    pageInfo { hasNextPage endCursor }
  }
}"""
DEFAULT_LIST = "{ sessions { totalCount edges { node { id archived } } } }"
FORKED_FROM = "query($id: ID!) { session(id: $id) { forkedFrom { id content session { id } } } }"
MISSING = "00000000-0000-4000-8000-000000000000"


async def session_of(client: httpx.AsyncClient, who: Account, session_id: str) -> Any:
    return (await ok(client, ONE, who, {"id": session_id}))["session"]


async def update(
    client: httpx.AsyncClient, who: Account, session_id: str, **changes: Any
) -> dict[str, Any]:
    data = await ok(client, UPDATE, who, {"id": session_id, "input": changes})
    updated: dict[str, Any] = data["updateSession"]
    return updated


async def listed(client: httpx.AsyncClient, who: Account, **variables: Any) -> Any:
    return (await ok(client, LIST, who, variables))["sessions"]


# Titles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_message", "title"),
    [
        ("hello there", "hello there"),
        ("  \n\n   What   is\tthe  plan?  \nsecond line is not the title", "What is the plan?"),
        (
            # 70 characters: cut at the last word boundary that leaves room for "…".
            "Explain the difference between keyset pagination and offset pagination",
            "Explain the difference between keyset pagination and offset…",
        ),
        (
            # One word longer than the limit: no boundary to cut at.
            "x" * 80,
            "x" * 59 + "…",
        ),
        ("exactly sixty " + "c" * 46, "exactly sixty " + "c" * 46),
    ],
    ids=["short", "first line collapsed", "word boundary", "one long word", "sixty"],
)
async def test_the_title_comes_from_the_first_user_message(
    client: httpx.AsyncClient, alice: Account, first_message: str, title: str
) -> None:
    session_id = await new_session(client, alice)
    assert (await session_of(client, alice, session_id))["title"] is None

    await send_gql(client, alice, session_id, first_message)
    await send_gql(client, alice, session_id, "a second message does not rename it")

    found = (await session_of(client, alice, session_id))["title"]
    assert found == title
    assert len(found) <= 60


async def test_a_title_set_before_the_first_message_is_kept(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    await update(client, alice, session_id, title="My plan")

    await send_gql(client, alice, session_id, "something else entirely")

    assert (await session_of(client, alice, session_id))["title"] == "My plan"


async def test_update_sets_clears_and_keeps_fields(
    client: httpx.AsyncClient, alice: Account
) -> None:
    other_config = await make_config(model_name="other", parameters={"prefix": "Other: "})
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "first question")
    before = await session_of(client, alice, session_id)

    renamed = await update(client, alice, session_id, title="  Renamed ✓  ")
    archived = await update(client, alice, session_id, archived=True)  # the title is kept
    switched = await update(client, alice, session_id, modelConfigId=str(other_config.id))
    cleared = await update(client, alice, session_id, title=None, archived=False)

    assert before["title"] == "first question"
    assert renamed["title"] == "  Renamed ✓  "  # stored as given
    assert (archived["title"], archived["archived"]) == ("  Renamed ✓  ", True)
    assert switched["modelConfig"]["id"] == str(other_config.id)
    assert (cleared["title"], cleared["archived"]) == (None, False)
    assert cleared["messageCount"] == before["messageCount"] == 2
    assert before["updatedAt"] < renamed["updatedAt"] < archived["updatedAt"]
    assert archived["updatedAt"] < switched["updatedAt"] < cleared["updatedAt"]
    assert cleared["createdAt"] == before["createdAt"]
    # The next reply uses the config the session was switched to.
    reply = await send_gql(client, alice, session_id, "again")
    assert reply["aiMessage"]["content"] == "Other: again"
    # A cleared title is not generated again from a later message.
    assert (await session_of(client, alice, session_id))["title"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": " \t\n\u3000"}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"archived": None}, "archived"),
        ({"modelConfigId": None}, "modelConfigId"),
        ({}, "input"),
    ],
    ids=["empty", "blank", "too long", "nul", "archived null", "config null", "nothing"],
)
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, alice: Account, changes: dict[str, Any], field: str
) -> None:
    session_id = await new_session(client, alice)
    await update(client, alice, session_id, title="kept")

    error = await fails(
        client, UPDATE, alice, {"id": session_id, "input": changes}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == field
    assert (await session_of(client, alice, session_id))["title"] == "kept"


async def test_a_title_of_200_characters_is_accepted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    assert (await update(client, alice, session_id, title="é" * 200))["title"] == "é" * 200


async def test_an_unknown_model_config_is_not_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    for config_id in (MISSING, "not-an-id"):
        variables = {"id": session_id, "input": {"modelConfigId": config_id}}
        error = await fails(client, UPDATE, alice, variables, code="NOT_FOUND")
        assert "model config" in error["message"]


# Archive and the sessions list ------------------------------------------------------------


async def test_archived_sessions_leave_the_default_list(
    client: httpx.AsyncClient, alice: Account
) -> None:
    kept = [await new_session(client, alice) for _ in range(3)]
    shelved = [await new_session(client, alice) for _ in range(2)]
    for session_id in shelved:
        await update(client, alice, session_id, archived=True)

    default = (await ok(client, DEFAULT_LIST, alice))["sessions"]
    unarchived = await listed(client, alice, archived=False)
    archived = await listed(client, alice, archived=True)
    everything = await listed(client, alice, archived=None)

    def ids(connection: Any) -> list[str]:
        return [edge["node"]["id"] for edge in connection["edges"]]

    assert ids(default) == ids(unarchived) == kept[::-1]  # newest first
    assert default["totalCount"] == unarchived["totalCount"] == 3
    assert ids(archived) == shelved[::-1]
    assert archived["totalCount"] == 2
    assert all(edge["node"]["archived"] for edge in archived["edges"])
    assert ids(everything) == (kept + shelved)[::-1]
    assert everything["totalCount"] == 5
    # Unarchived, it is back in the default list, in its place (newest first by creation).
    await update(client, alice, shelved[0], archived=False)
    assert ids((await ok(client, DEFAULT_LIST, alice))["sessions"]) == [
        shelved[0],
        *kept[::-1],
    ]


async def test_the_archived_list_pages_by_cursor(client: httpx.AsyncClient, alice: Account) -> None:
    shelved = [await new_session(client, alice) for _ in range(5)]
    await new_session(client, alice)  # unarchived: never in these pages
    for session_id in shelved:
        await update(client, alice, session_id, archived=True)

    seen: list[str] = []
    after = None
    while True:
        page = await listed(client, alice, archived=True, first=2, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == shelved[::-1]


async def test_admins_filter_another_users_list_and_users_may_not(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    shelved = await new_session(client, alice)
    await new_session(client, alice)
    await update(client, alice, shelved, archived=True)

    by_admin = await listed(client, admin, archived=True, u=alice.user_id)
    by_bob = await fails(
        client, LIST, bob, {"archived": True, "u": alice.user_id}, code="FORBIDDEN"
    )

    assert [edge["node"]["id"] for edge in by_admin["edges"]] == [shelved]
    assert "admin" in by_bob["message"]


async def test_an_archived_session_is_still_read_and_written_by_id(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    await update(client, alice, session_id, archived=True)

    await send_gql(client, alice, session_id, "still here?")

    found = await session_of(client, alice, session_id)
    assert (found["archived"], found["messageCount"]) == (True, 2)


# updatedAt ---------------------------------------------------------------------------------


async def test_updated_at_follows_the_last_message(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    created = await session_of(client, alice, session_id)

    sent = await send_gql(client, alice, session_id, "tick")
    after_one = await session_of(client, alice, session_id)
    await send(client, alice, session_id, "tock")  # through the other door
    after_two = await session_of(client, alice, session_id)

    assert created["updatedAt"] >= created["createdAt"]
    assert created["updatedAt"] < after_one["updatedAt"] < after_two["updatedAt"]
    assert after_one["updatedAt"] >= sent["aiMessage"]["createdAt"]


# Delete ------------------------------------------------------------------------------------


async def test_delete_removes_the_session_and_its_messages_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    kept = await new_session(client, alice)
    for text in ("one", "two"):
        await send_gql(client, alice, session_id, text)
    await send_gql(client, alice, kept, "stays")

    deleted = await ok(client, DELETE, alice, {"id": session_id})
    again = await fails(client, DELETE, alice, {"id": session_id}, code="NOT_FOUND")

    assert deleted == {"deleteSession": session_id}
    assert "session" in again["message"]
    assert (await ok(client, ONE, alice, {"id": session_id}))["session"] is None
    assert await Message.filter(session_id=session_id).count() == 0
    assert await Message.filter(session_id=kept).count() == 2
    listed_ids = [edge["node"]["id"] for edge in (await listed(client, alice))["edges"]]
    assert listed_ids == [kept]
    history = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers)
    assert history.status_code == 404


async def test_delete_of_a_malformed_or_unknown_id_is_not_found(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for session_id in ("nope", MISSING):
        await fails(client, DELETE, alice, {"id": session_id}, code="NOT_FOUND")


async def test_concurrent_deletes_delete_once(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "hi")

    answers = await asyncio.gather(
        *(
            client.post(
                "/graphql",
                json={"query": DELETE, "variables": {"id": session_id}},
                headers=alice.headers,
            )
            for _ in range(3)
        )
    )

    bodies = [answer.json() for answer in answers]
    done = [body for body in bodies if not body.get("errors")]
    refused = [body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors")]
    assert [body["data"]["deleteSession"] for body in done] == [session_id]
    assert refused == ["NOT_FOUND", "NOT_FOUND"]
    deletions = await LogEntry.filter(event="session.deleted").count()
    assert deletions == 1


async def test_deleting_stops_a_running_reply_first(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    """The sender's stream ends with what was said, stored as cancelled; then the session
    and every message of it are gone."""
    session_id = await slow_session(client, alice)

    async with TransportWS.connect(live.ws_url, headers=alice.headers) as socket:
        operation, user_id, pieces = await start_and_read(socket, session_id)
        deleted = await ok(client, DELETE, alice, {"id": session_id})
        rest = [result["data"]["sendMessageStream"] for result in await socket.results(operation)]

    assert deleted == {"deleteSession": session_id}
    *more, final = rest
    said = text_of([*pieces, *more])
    assert final["id"] == pieces[0]["messageId"]
    assert (final["content"], final["metadata"]["finish_reason"]) == (said, "cancelled")
    assert len(said) < len(f"Echo: {QUESTION}")
    assert not await ChatSession.exists(id=session_id)
    assert not await Message.exists(id=user_id)
    assert not await Message.exists(id=final["id"])


# Ownership and logs ------------------------------------------------------------------------


async def test_another_users_session_is_not_found_and_admins_may(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)

    as_bob = await fails(
        client, UPDATE, bob, {"id": session_id, "input": {"title": "mine"}}, code="NOT_FOUND"
    )
    absent = await fails(
        client, UPDATE, bob, {"id": MISSING, "input": {"title": "mine"}}, code="NOT_FOUND"
    )
    await fails(client, DELETE, bob, {"id": session_id}, code="NOT_FOUND")
    by_admin = await update(client, admin, session_id, title="moderated")

    assert as_bob["message"] == absent["message"]  # nothing tells bob it exists
    assert by_admin["title"] == "moderated"
    assert (await session_of(client, alice, session_id))["title"] == "moderated"
    assert await ok(client, DELETE, admin, {"id": session_id}) == {"deleteSession": session_id}
    assert (await ok(client, ONE, alice, {"id": session_id}))["session"] is None


async def test_every_change_is_logged_with_its_actor(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)
    await update(client, alice, session_id, title="Named", archived=True)
    await update(client, admin, session_id, archived=True)  # no real change
    await ok(client, DELETE, admin, {"id": session_id})

    entries = [
        entry
        for entry in await LogEntry.filter(event__startswith="session.").order_by("id")
        if entry.details and entry.details.get("session_id") == session_id
    ]

    assert [(e.event, e.actor_id) for e in entries] == [
        ("session.created", alice.user_id),
        ("session.updated", alice.user_id),
        ("session.updated", admin.user_id),
        ("session.deleted", admin.user_id),
    ]
    named, unchanged, deleted = entries[1], entries[2], entries[3]
    assert named.details["changed"] == ["archived", "title"]
    assert named.details["changes"]["title"] == {"from": None, "to": "Named"}
    assert "archived, title changed" in named.message and "alice" in named.message
    assert unchanged.details["changed"] == []
    assert deleted.details["user_id"] == alice.user_id
    assert "root" in deleted.message


# forkedFrom --------------------------------------------------------------------------------


async def test_forked_from_names_a_message_the_caller_may_see(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    """Read through a DataLoader of messages: null when the session is no fork, when the
    message is gone, or when it is in a session the caller may not see."""
    origin = await new_session(client, alice)
    asked = (await send_gql(client, alice, origin, "fork here"))["userMessage"]
    plain = await new_session(client, alice)
    fork = await new_session(client, alice)
    orphan = await new_session(client, alice)
    from_bob = await new_session(client, alice)
    bob_session = await create_session(client, bob)
    bobs = (await send(client, bob, bob_session, "bob's")).json()["data"]["user_message"]
    await ChatSession.filter(id=fork).update(forked_from_id=asked["id"])
    await ChatSession.filter(id=orphan).update(forked_from_id=MISSING)
    await ChatSession.filter(id=from_bob).update(forked_from_id=bobs["message_id"])

    async def forked_from(who: Account, session_id: str) -> Any:
        return (await ok(client, FORKED_FROM, who, {"id": session_id}))["session"]["forkedFrom"]

    assert await forked_from(alice, plain) is None
    assert await forked_from(alice, fork) == {
        "id": asked["id"],
        "content": "fork here",
        "session": {"id": origin},
    }
    assert await forked_from(alice, orphan) is None
    assert await forked_from(alice, from_bob) is None  # not alice's to see
    assert (await forked_from(admin, from_bob))["id"] == bobs["message_id"]
    both = await ok(
        client,
        "query($a: ID!, $b: ID!) { a: session(id: $a) { forkedFrom { id } }"
        " b: session(id: $b) { forkedFrom { id } } }",
        alice,
        {"a": fork, "b": orphan},
    )
    assert both == {"a": {"forkedFrom": {"id": asked["id"]}}, "b": {"forkedFrom": None}}
