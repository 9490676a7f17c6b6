"""An admin acts for another user through GraphQL (`userId`) exactly as through REST
(`user_id`): the same rule, from the same service function, in both doors."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import Account, read_history, send
from tests.rest.expect import ok as rest_ok
from tests.rest.expect import refused, url
from tests.schema.gql import CREATE_SESSION, SEND, fails, new_session, ok


async def test_an_admin_creates_a_session_for_a_user_in_both_doors(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    made = (await ok(client, CREATE_SESSION, admin, {"input": {"userId": alice.user_id}}))[
        "createSession"
    ]
    rest = rest_ok(
        await client.post(url("/sessions"), json={"user_id": alice.user_id}, headers=admin.headers)
    )

    assert made["user"] == {"id": alice.user_id, "name": "alice"}
    # Both are alice's: she reads them as her own.
    for session_id in (made["id"], rest["session_id"]):
        assert (await read_history(client, alice, session_id))["total"] == 0
    mine = await ok(client, "{ sessions { edges { node { id } } } }", alice)
    listed = {edge["node"]["id"] for edge in mine["sessions"]["edges"]}
    assert listed == {made["id"], rest["session_id"]}


async def test_a_user_may_name_only_themselves_in_both_doors(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    own = await ok(client, CREATE_SESSION, alice, {"input": {"userId": alice.user_id}})
    assert own["createSession"]["user"]["id"] == alice.user_id

    error = await fails(
        client, CREATE_SESSION, alice, {"input": {"userId": bob.user_id}}, code="FORBIDDEN"
    )
    rest = await client.post(url("/sessions"), json={"user_id": bob.user_id}, headers=alice.headers)

    assert refused(rest, 403) == error["message"]


async def test_an_admin_sends_in_a_users_session_naming_the_user(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)

    sent = await ok(
        client,
        SEND,
        admin,
        {"input": {"sessionId": session_id, "content": "for alice", "userId": alice.user_id}},
    )
    rest = await send(client, admin, session_id, "again", user_id=alice.user_id)

    assert sent["sendMessage"]["aiMessage"]["content"] == "Echo: for alice"
    assert rest.status_code == 200, rest.text
    history = await read_history(client, alice, session_id)
    assert [m["content"] for m in history["messages"]] == [
        "for alice",
        "Echo: for alice",
        "again",
        "Echo: again",
    ]


@pytest.mark.parametrize(
    ("sender", "code", "status"),
    [
        # The session is alice's, not bob's: not found, whoever asks for bob's.
        ("admin", "NOT_FOUND", 404),
        # Only an admin may name another user at all.
        ("alice", "FORBIDDEN", 403),
    ],
)
async def test_a_send_naming_the_wrong_user_stores_nothing_in_both_doors(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
    sender: str,
    code: str,
    status: int,
) -> None:
    who = {"admin": admin, "alice": alice}[sender]
    session_id = await new_session(client, alice)
    variables = {"input": {"sessionId": session_id, "content": "x", "userId": bob.user_id}}

    error = await fails(client, SEND, who, variables, code=code)
    rest = await send(client, who, session_id, "x", user_id=bob.user_id)

    assert refused(rest, status) == error["message"]
    assert (await read_history(client, alice, session_id))["total"] == 0
