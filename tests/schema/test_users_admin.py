"""Admin user management over GraphQL: `users`, `createUser`, `setUserRole`, `disableUser`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from db.errors import Invalid
from db.models import LogEntry, Role, User
from db.services import auth_failures, users
from schema.cursors import key_cursor
from tests.factories import Account, make_account
from tests.schema.conftest import OpenVariant
from tests.schema.gql import fails, ok, post

USERS = """query($first: Int, $after: String) {
  users(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id name role createdAt disabledAt } }
  }
}"""
CREATE_USER = """mutation($name: String!, $role: Role) {
  createUser(name: $name, role: $role) { key user { id name role disabledAt } apiKey { id prefix } }
}"""
CREATE_USER_DEFAULT_ROLE = """mutation($name: String!) {
  createUser(name: $name) { key user { role } }
}"""
SET_ROLE = "mutation($id: ID!, $role: Role!) { setUserRole(id: $id, role: $role) { id role } }"
DISABLE = "mutation($id: ID!) { disableUser(id: $id) { id name disabledAt } }"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def remembered() -> Iterator[None]:
    """Verified keys kept, as on PostgreSQL: a change of role or a disabling must forget
    them at once."""
    users.remember_callers(60)
    yield
    users.remember_callers(0)


async def test_users_are_listed_newest_first_in_keyset_pages(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for index in range(4):
        await make_account(f"user-{index}")

    first = (await ok(client, USERS, admin, {"first": 3}))["users"]
    rest = await ok(client, USERS, admin, {"first": 3, "after": first["pageInfo"]["endCursor"]})
    second = rest["users"]

    names = [e["node"]["name"] for e in first["edges"] + second["edges"]]
    assert names == ["user-3", "user-2", "user-1", "user-0", "root"]
    assert first["totalCount"] == second["totalCount"] == 5
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    assert not second["pageInfo"]["hasNextPage"] and second["pageInfo"]["hasPreviousPage"]
    assert all(e["node"]["disabledAt"] is None for e in first["edges"])
    assert first["edges"][0]["node"]["role"] == "USER"


async def test_a_bad_page_of_users_names_the_field(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    a_session = key_cursor("s", datetime.now(UTC), alice.user_id)  # another list's cursor
    for variables, field in (
        ({"first": 101}, "first"),
        ({"after": "%%%"}, "after"),
        ({"after": a_session}, "after"),
    ):
        error = await fails(client, USERS, admin, variables, code="BAD_USER_INPUT")
        assert error["extensions"]["field"] == field


ADMIN_ONLY = {
    "users": ("{ users { totalCount } }", {}),
    "createUser": ('mutation { createUser(name: "mallory") { key } }', {}),
    "setUserRole": (SET_ROLE, {"role": "ADMIN"}),
    "disableUser": (DISABLE, {}),
}


@pytest.mark.parametrize("operation", sorted(ADMIN_ONLY))
async def test_user_management_is_forbidden_to_users(
    client: httpx.AsyncClient, alice: Account, bob: Account, operation: str
) -> None:
    document, variables = ADMIN_ONLY[operation]

    for target in (bob.user_id, alice.user_id):
        error = await fails(client, document, alice, {**variables, "id": target}, code="FORBIDDEN")
        assert error["path"] == [operation]

    assert await User.all().count() == 2
    stored = {str(u.id): (u.role, u.disabled_at) for u in await User.all()}
    assert stored == {alice.user_id: (Role.USER, None), bob.user_id: (Role.USER, None)}


async def test_an_admin_creates_a_user_whose_key_is_shown_once_and_works(
    client: httpx.AsyncClient, admin: Account
) -> None:
    made = await ok(client, CREATE_USER, admin, {"name": " carol ", "role": "ADMIN"})
    created = made["createUser"]

    assert created["user"]["name"] == "carol" and created["user"]["role"] == "ADMIN"
    assert created["key"].startswith(created["apiKey"]["prefix"])
    me = await ok(
        client, "{ me { id role apiKeys { id } } }", {"Authorization": f"Bearer {created['key']}"}
    )
    assert me["me"] == {
        "id": created["user"]["id"],
        "role": "ADMIN",
        "apiKeys": [{"id": created["apiKey"]["id"]}],
    }
    default = await ok(client, CREATE_USER_DEFAULT_ROLE, admin, {"name": "dave"})
    assert default["createUser"]["user"]["role"] == "USER"


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
    ],
)
async def test_a_bad_new_user_names_the_field(
    client: httpx.AsyncClient, admin: Account, variables: dict[str, str], field: str
) -> None:
    error = await fails(client, CREATE_USER, admin, variables, code="BAD_USER_INPUT")

    assert error["extensions"]["field"] == field
    assert error["path"] == ["createUser"]
    assert await User.all().count() == 1


async def test_an_unknown_role_is_refused_naming_the_variable(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    for document, variables in (
        (CREATE_USER, {"name": "eve", "role": "ROOT"}),
        (SET_ROLE, {"id": alice.user_id, "role": "owner"}),
    ):
        answer = await post(client, document, admin, variables)
        assert answer.data is None
        error = answer.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("Variable '$role'")
    assert await User.filter(role=Role.ADMIN).count() == 1


async def test_a_new_role_holds_at_once_for_keys_already_verified(
    client: httpx.AsyncClient, alice: Account, admin: Account, remembered: None
) -> None:
    await fails(client, "{ logs { totalCount } }", alice, code="FORBIDDEN")  # alice kept

    promoted = await ok(client, SET_ROLE, admin, {"id": alice.user_id, "role": "ADMIN"})

    assert promoted["setUserRole"] == {"id": alice.user_id, "role": "ADMIN"}
    await ok(client, "{ logs { totalCount } }", alice)
    await ok(client, SET_ROLE, admin, {"id": alice.user_id, "role": "USER"})
    await fails(client, "{ logs { totalCount } }", alice, code="FORBIDDEN")


async def test_the_last_enabled_admin_keeps_the_role(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    error = await fails(
        client, SET_ROLE, admin, {"id": admin.user_id, "role": "USER"}, code="BAD_USER_INPUT"
    )
    assert error["extensions"]["field"] == "role"
    assert "last enabled admin" in error["message"]

    await ok(client, SET_ROLE, admin, {"id": alice.user_id, "role": "ADMIN"})
    demoted = await ok(client, SET_ROLE, admin, {"id": admin.user_id, "role": "USER"})
    assert demoted["setUserRole"]["role"] == "USER"
    # alice, the only admin left, cannot step down either.
    await fails(
        client, SET_ROLE, alice, {"id": alice.user_id, "role": "USER"}, code="BAD_USER_INPUT"
    )


async def test_a_disabled_users_keys_all_stop_at_once(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, remembered: None
) -> None:
    second = await users.create_key(user_id=alice.user_id, label="phone")
    for secret in (alice.key, second.secret):  # both verified, and kept
        await ok(client, "{ me { id } }", {"Authorization": f"Bearer {secret}"})

    disabled = (await ok(client, DISABLE, admin, {"id": alice.user_id}))["disableUser"]

    assert disabled["id"] == alice.user_id and disabled["disabledAt"] is not None
    for secret in (alice.key, second.secret):
        error = await fails(
            client, "{ me { id } }", {"Authorization": f"Bearer {secret}"}, code="UNAUTHENTICATED"
        )
        assert error["message"] == "user is disabled"
    assert (await ok(client, "{ me { name } }", bob))["me"]["name"] == "bob"
    listed = await ok(client, USERS, admin)
    by_id = {e["node"]["id"]: e["node"] for e in listed["users"]["edges"]}
    assert by_id[alice.user_id]["disabledAt"] == disabled["disabledAt"]
    # Disabling again changes nothing; no new key can be issued for a disabled user.
    again = (await ok(client, DISABLE, admin, {"id": alice.user_id}))["disableUser"]
    assert again["disabledAt"] == disabled["disabledAt"]
    with pytest.raises(Invalid):
        await users.create_key(user_id=alice.user_id)

    await auth_failures.flush()
    failures = await LogEntry.filter(event="auth.failed", actor_id=alice.user_id)
    assert [(f.details or {}).get("count") for f in failures] == [2]
    assert "disabled user" in failures[0].message


async def test_nobody_disables_themselves_nor_an_unknown_user(
    client: httpx.AsyncClient, admin: Account
) -> None:
    error = await fails(client, DISABLE, admin, {"id": admin.user_id}, code="BAD_USER_INPUT")
    assert error["extensions"]["field"] == "id"
    for unknown in (UNKNOWN_ID, "not-an-id"):
        missing = await fails(client, DISABLE, admin, {"id": unknown}, code="NOT_FOUND")
        assert missing["message"] == "user not found"
        await fails(client, SET_ROLE, admin, {"id": unknown, "role": "ADMIN"}, code="NOT_FOUND")
    assert (await ok(client, "{ me { name } }", admin))["me"]["name"] == "root"


async def test_the_last_enabled_admin_is_never_disabled(admin: Account) -> None:
    """The console acts as nobody: only the last-admin rule stops it."""
    with pytest.raises(Invalid) as refused:
        await users.disable(user_id=admin.user_id)

    assert refused.value.field == "id"
    other = await make_account("second", admin=True)
    await users.disable(user_id=admin.user_id)
    with pytest.raises(Invalid):
        await users.update_role(user_id=other.user_id, role=Role.USER)


async def test_user_changes_are_audited_with_the_actor_and_never_a_secret(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    created = (await ok(client, CREATE_USER, admin, {"name": "carol"}))["createUser"]
    carol = created["user"]["id"]
    await ok(client, SET_ROLE, admin, {"id": carol, "role": "ADMIN"})
    await ok(client, DISABLE, admin, {"id": carol})

    rows = await LogEntry.filter(event__startswith="user.").order_by("id")
    assert [(r.event, r.actor_id) for r in rows] == [
        ("user.created", admin.user_id),
        ("user.role_changed", admin.user_id),
        ("user.disabled", admin.user_id),
    ]
    assert all(r.details and r.details["user_id"] == carol for r in rows)
    assert rows[0].details and rows[0].details["key_id"] == created["apiKey"]["id"]
    assert rows[1].details and (rows[1].details["from"], rows[1].details["to"]) == (
        "user",
        "admin",
    )
    text = orjson.dumps([(r.message, r.details) for r in rows]).decode()
    assert created["key"] not in text


async def test_two_admins_demoting_each_other_at_once_leave_one_admin_and_no_error(
    client: httpx.AsyncClient, admin: Account
) -> None:
    other = await make_account("second", admin=True)
    for _ in range(5):
        answers = await asyncio.gather(
            post(client, SET_ROLE, admin, {"id": other.user_id, "role": "USER"}),
            post(client, SET_ROLE, other, {"id": admin.user_id, "role": "USER"}),
        )
        # One wins; the other is then the last admin, or no admin at all by the time its
        # role is read (never a database error).
        codes = sorted(code for answer in answers for code in answer.codes)
        assert len(codes) == 1 and codes[0] in ("BAD_USER_INPUT", "FORBIDDEN"), answers
        admins = [u for u in await users.list_all() if Role(u.role) is Role.ADMIN]
        assert len(admins) == 1
        demoted = other if str(admins[0].id) == admin.user_id else admin
        await users.update_role(user_id=demoted.user_id, role=Role.ADMIN)


async def test_a_user_holds_a_bounded_number_of_active_keys(
    client: httpx.AsyncClient, variant: OpenVariant, alice: Account
) -> None:
    create = 'mutation { createApiKey(label: "more") { apiKey { id } } }'
    async with variant(MAX_KEYS_PER_USER="3") as capped:
        for _ in range(2):  # alice's first key, and two more
            await ok(capped, create, alice)
        error = await fails(capped, create, alice, code="BAD_USER_INPUT")
        assert error["message"] == "at most 3 active keys per user: revoke one first"
        (key,) = [k for k in await users.list_keys(user_id=alice.user_id) if k.label == "more"][:1]
        await users.revoke_key(key_id_or_prefix=str(key.id))
        await ok(capped, create, alice)


async def test_an_identity_providers_user_cannot_issue_themselves_a_key(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    await User.filter(id=alice.user_id).update(issuer="https://idp.test", subject="alice")
    create = 'mutation { createApiKey(label: "mine") { apiKey { id } } }'

    error = await fails(client, create, alice, code="FORBIDDEN")

    assert "identity provider" in error["message"]
    issued = await users.create_key(user_id=alice.user_id, label="given")  # the console may
    assert str(issued.key.user_id) == alice.user_id
