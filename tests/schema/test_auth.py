"""The authentication matrix of every query and mutation, ownership, admin-only operations,
and introspection with and without GRAPHQL_INTROSPECTION."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.models import LogEntry
from db.services import auth_failures, users
from tests.factories import Account, make_account, make_config
from tests.schema.conftest import OpenVariant
from tests.schema.gql import Headers, fails, new_session, ok, post

# name -> (document, variables given the ids of a session and a config)
OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "me": ("{ me { id } }", {}),
    "session": ("query($s: ID!) { session(id: $s) { id } }", {"s": "SESSION"}),
    "sessions": ("{ sessions { totalCount } }", {}),
    "modelConfigs": ("{ modelConfigs { id } }", {}),
    "modelConfig": ("query($c: ID!) { modelConfig(id: $c) { id } }", {"c": "CONFIG"}),
    "logs": ("{ logs { totalCount } }", {}),
    "createSession": ("mutation { createSession { id } }", {}),
    "sendMessage": (
        'mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "hi"}) '
        "{ aiMessage { id } } }",
        {"s": "SESSION"},
    ),
    "updateModelConfig": (
        'mutation($c: ID!) { updateModelConfig(id: $c, input: {modelName: "x"}) { id } }',
        {"c": "CONFIG"},
    ),
    "createModelConfig": (
        'mutation { createModelConfig(input: {modelName: "m", modelVersion: "1", '
        'provider: "echo"}) { id } }',
        {},
    ),
    "users": ("{ users { totalCount } }", {}),
    "createUser": ('mutation { createUser(name: "carol") { key } }', {}),
    "setUserRole": (
        "mutation($u: ID!) { setUserRole(id: $u, role: ADMIN) { id } }",
        {"u": "00000000-0000-4000-8000-000000000000"},
    ),
    "disableUser": (
        "mutation($u: ID!) { disableUser(id: $u) { id } }",
        {"u": "00000000-0000-4000-8000-000000000000"},
    ),
    "createApiKey": ('mutation { createApiKey(label: "x") { key } }', {}),
    "revokeApiKey": (
        "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
        {"k": "00000000-0000-4000-8000-000000000000"},
    ),
}
STATE = """query($s: ID!) {
  sessions { totalCount } session(id: $s) { messageCount } modelConfigs { version } }"""


def filled(variables: dict[str, Any], session_id: str, config_id: str) -> dict[str, Any]:
    ids = {"SESSION": session_id, "CONFIG": config_id}
    return {name: ids.get(value, value) for name, value in variables.items()}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_every_operation_refuses_missing_bad_and_revoked_credentials(
    client: httpx.AsyncClient, alice: Account, admin: Account, operation: str
) -> None:
    session_id = await new_session(client, alice)
    config_id = str((await make_config()).id)
    revoked = await make_account("revoked", admin=True)
    await users.revoke_key(key_id_or_prefix=revoked.key_id)
    document, variables = OPERATIONS[operation]
    credentials: dict[str, Headers] = {
        "none": {},
        "unknown key": {"Authorization": "Bearer cgw_not-a-key"},
        "revoked key": revoked.headers,
        "not bearer": {"Authorization": f"Basic {alice.key}"},
    }

    for kind, headers in credentials.items():
        answer = await post(client, document, headers, filled(variables, session_id, config_id))
        assert answer.codes == ["UNAUTHENTICATED"], (kind, answer.errors)
        assert answer.error()["path"] == [operation]
        assert answer.data in (None, {operation: None})

    await auth_failures.flush()
    data = await ok(client, "{ logs(first: 100) { edges { node { event details } } } }", admin)
    failures = [e["node"] for e in data["logs"]["edges"] if e["node"]["event"] == "auth.failed"]
    # One summary per reason: "none" and "not bearer" are both "no credentials".
    assert sorted(f["details"]["count"] for f in failures) == [1, 1, 2]
    assert {f["details"]["source"] for f in failures} == {"graphql"}
    state = await ok(client, STATE, alice, {"s": session_id})  # nothing created, sent, changed
    assert state["sessions"]["totalCount"] == 1
    assert state["session"]["messageCount"] == 0
    assert [c["version"] for c in state["modelConfigs"]] == [1, 1]


async def test_another_users_session_is_invisible(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    bobs = await new_session(client, bob)
    query = "query($s: ID!) { session(id: $s) { id messageCount } }"

    assert await ok(client, query, alice, {"s": bobs}) == {"session": None}
    assert (await ok(client, "{ sessions { totalCount } }", alice))["sessions"]["totalCount"] == 0
    error = await fails(
        client,
        OPERATIONS["sendMessage"][0],
        alice,
        {"s": bobs},
        code="NOT_FOUND",
    )
    assert error["message"] == "session not found"
    assert (await ok(client, query, bob, {"s": bobs}))["session"]["messageCount"] == 0


async def test_admin_operations_are_forbidden_to_users_and_allowed_to_admins(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    config_id = str((await make_config()).id)
    bobs = await new_session(client, bob)
    admin_only = {
        name: (OPERATIONS[name][0], filled(OPERATIONS[name][1], bobs, config_id))
        for name in ("logs", "updateModelConfig", "createModelConfig")
    }
    others = "query($u: ID!) { sessions(userId: $u) { edges { node { id } } } }"
    admin_only["sessions"] = (others, {"u": bob.user_id})

    for name, (document, variables) in admin_only.items():
        error = await fails(client, document, alice, variables, code="FORBIDDEN")
        assert error["path"] == [name]
    configs = (await ok(client, "{ modelConfigs { version } }", alice))["modelConfigs"]
    assert [c["version"] for c in configs] == [1, 1]

    for name, (document, variables) in admin_only.items():
        assert (await ok(client, document, admin, variables))[name] is not None
    listed = await ok(client, others, admin, {"u": bob.user_id})
    assert [e["node"]["id"] for e in listed["sessions"]["edges"]] == [bobs]
    mine = await ok(client, others, alice, {"u": alice.user_id})
    assert mine == {"sessions": {"edges": []}}


async def test_admins_see_any_session(
    client: httpx.AsyncClient, bob: Account, admin: Account
) -> None:
    bobs = await new_session(client, bob)

    data = await ok(
        client, "query($s: ID!) { session(id: $s) { user { name } } }", admin, {"s": bobs}
    )

    assert data == {"session": {"user": {"name": "bob"}}}


async def test_introspection_needs_no_token_when_enabled(client: httpx.AsyncClient) -> None:
    data = await ok(client, '{ __schema { queryType { name } } __type(name: "User") { name } }')

    assert data == {"__schema": {"queryType": {"name": "Query"}}, "__type": {"name": "User"}}


async def test_introspection_is_refused_when_switched_off(
    variant: OpenVariant, alice: Account
) -> None:
    async with variant(GRAPHQL_INTROSPECTION="false") as closed:
        for document in ("{ __schema { types { name } } }", '{ __type(name: "User") { name } }'):
            answer = await post(closed, document, alice)
            assert answer.data is None
            assert set(answer.codes) == {"GRAPHQL_VALIDATION_FAILED"}
            assert "introspection has been disabled" in answer.errors[0]["message"]
        assert await ok(closed, "{ me { name } }", alice) == {"me": {"name": "alice"}}


async def test_permission_denials_are_logged_as_summaries_with_the_actor(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    for _ in range(3):
        answer = await post(client, "{ logs { totalCount } }", alice)
        assert answer.codes == ["FORBIDDEN"]
    answer = await post(
        client, "query($u: ID) { sessions(userId: $u) { totalCount } }", alice, {"u": admin.user_id}
    )
    assert answer.codes == ["FORBIDDEN"]

    await auth_failures.flush()
    data = await ok(
        client, "{ logs(first: 100) { edges { node { event message actorId details } } } }", admin
    )
    denials = [e["node"] for e in data["logs"]["edges"] if e["node"]["event"] == "auth.denied"]
    by_source = {d["details"]["source"]: d for d in denials}
    assert sorted(by_source) == ["GraphQL logs", "GraphQL sessions"]
    assert by_source["GraphQL logs"]["details"]["count"] == 3
    assert (
        by_source["GraphQL sessions"]["details"]["count"] == 1
    )  # once, though both paths check it
    assert {d["actorId"] for d in denials} == {alice.user_id}
    assert by_source["GraphQL logs"]["message"].startswith("permission denied: only admins may")


# Nullable root fields: each one's error is reported, so each one asks for the caller.
ALIASED = """query($id: ID!) {
  a: session(id: $id) { id } b: session(id: $id) { id } c: modelConfig(id: $id) { id } }"""
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"


async def test_an_operation_is_authenticated_once_however_many_root_fields(
    client: httpx.AsyncClient,
) -> None:
    """Every root field asks for the caller: a refusal is remembered, not asked (and
    counted) again per field."""
    headers = {"Authorization": "Bearer cgw_not-a-key"}
    answer = await post(client, ALIASED, headers, {"id": NO_SUCH_ID})
    assert answer.codes == ["UNAUTHENTICATED"] * 3, answer.errors

    await auth_failures.flush()
    failures = await LogEntry.filter(event="auth.failed")
    assert [(entry.details or {}).get("count") for entry in failures] == [1]
