"""Key self-service over GraphQL: `me { apiKeys }`, `createApiKey`, `revokeApiKey`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from db.models import LogEntry
from db.services import users
from tests.factories import Account
from tests.schema.gql import fails, ok
from tests.schema.statements import counted

KEYS = "{ me { apiKeys { id prefix label createdAt lastUsedAt revokedAt } } }"
CREATE = """mutation($label: String) {
  createApiKey(label: $label) { key apiKey { id prefix label createdAt lastUsedAt revokedAt } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { id prefix revokedAt } }"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def remembered() -> Iterator[None]:
    """Verified keys kept, as on PostgreSQL: what changes must forget them at once."""
    users.remember_callers(60)
    yield
    users.remember_callers(0)


async def test_a_created_key_is_shown_once_works_and_is_listed_without_its_secret(
    client: httpx.AsyncClient, alice: Account
) -> None:
    created = (await ok(client, CREATE, alice, {"label": "  laptop "}))["createApiKey"]
    secret, key = created["key"], created["apiKey"]

    assert secret.startswith(key["prefix"]) and secret.startswith("cgw_")
    assert key["label"] == "laptop"
    assert key["lastUsedAt"] is None and key["revokedAt"] is None
    assert await ok(client, "{ me { name } }", bearer(secret)) == {"me": {"name": "alice"}}
    listed = await ok(client, KEYS, alice)
    assert [k["id"] for k in listed["me"]["apiKeys"]] == [alice.key_id, key["id"]]
    assert [k["label"] for k in listed["me"]["apiKeys"]] == ["", "laptop"]
    text = orjson.dumps(listed).decode()
    assert secret not in text and alice.key not in text
    assert "digest" not in text


async def test_a_label_is_optional(client: httpx.AsyncClient, alice: Account) -> None:
    created = await ok(client, "mutation { createApiKey { key apiKey { label } } }", alice)

    assert created["createApiKey"]["apiKey"]["label"] == ""


@pytest.mark.parametrize(
    ("label", "reason"),
    [("x" * 101, "must be at most 100 characters"), ("a\x00b", "must not contain NUL")],
)
async def test_a_bad_label_is_refused_naming_the_field(
    client: httpx.AsyncClient, alice: Account, label: str, reason: str
) -> None:
    error = await fails(client, CREATE, alice, {"label": label}, code="BAD_USER_INPUT")

    assert error["extensions"]["field"] == "label"
    assert error["path"] == ["createApiKey"]
    assert reason.split()[0] in error["message"]
    assert len((await ok(client, KEYS, alice))["me"]["apiKeys"]) == 1


async def test_a_revoked_key_stops_at_once_and_leaves_the_list(
    client: httpx.AsyncClient, alice: Account, remembered: None
) -> None:
    created = (await ok(client, CREATE, alice, {"label": "old"}))["createApiKey"]
    other = bearer(created["key"])
    assert (await ok(client, "{ me { id } }", other))["me"]["id"] == alice.user_id  # kept

    revoked = (await ok(client, REVOKE, alice, {"id": created["apiKey"]["id"]}))["revokeApiKey"]

    assert revoked["id"] == created["apiKey"]["id"]
    assert revoked["revokedAt"] is not None
    error = await fails(client, "{ me { id } }", other, code="UNAUTHENTICATED")
    assert error["message"] == "API key has been revoked"
    listed = await ok(client, KEYS, alice)
    assert [k["id"] for k in listed["me"]["apiKeys"]] == [alice.key_id]
    again = await fails(client, REVOKE, alice, {"id": created["apiKey"]["id"]}, code="NOT_FOUND")
    assert again["message"] == "active key not found"


async def test_a_caller_may_revoke_the_key_they_called_with(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await ok(client, REVOKE, alice, {"id": alice.key_id})

    await fails(client, "{ me { id } }", alice, code="UNAUTHENTICATED")


async def test_another_users_key_is_not_found_and_keeps_working(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for key_id in (alice.key_id, alice.key[: users.PREFIX_CHARS], "not-an-id"):
        error = await fails(client, REVOKE, bob, {"id": key_id}, code="NOT_FOUND")
        assert error["message"] == "active key not found"
        assert error["path"] == ["revokeApiKey"]

    assert (await ok(client, "{ me { name } }", alice))["me"]["name"] == "alice"
    # Bob sees only his own keys, through `me`; alice's are nowhere in his answers.
    mine = await ok(client, KEYS, bob)
    assert [k["id"] for k in mine["me"]["apiKeys"]] == [bob.key_id]


async def test_an_admin_revokes_anyones_key_and_sees_anyones_keys(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    listed = await ok(client, "{ users { edges { node { name apiKeys { id prefix } } } } }", admin)
    keys = {e["node"]["name"]: e["node"]["apiKeys"] for e in listed["users"]["edges"]}
    assert [k["id"] for k in keys["alice"]] == [alice.key_id]

    await ok(client, REVOKE, admin, {"id": alice.key_id})

    await fails(client, "{ me { id } }", alice, code="UNAUTHENTICATED")


async def test_key_changes_are_audited_with_the_actor_and_never_the_secret(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    created = (await ok(client, CREATE, alice, {"label": "ci"}))["createApiKey"]
    await ok(client, REVOKE, alice, {"id": created["apiKey"]["id"]})
    await ok(client, REVOKE, admin, {"id": alice.key_id})

    rows = await LogEntry.filter(event__startswith="key.").order_by("id")
    entries: list[dict[str, Any]] = [
        {"event": r.event, "actor": r.actor_id, "key": (r.details or {}).get("key_id")}
        for r in rows
    ]
    assert entries == [
        {"event": "key.created", "actor": alice.user_id, "key": created["apiKey"]["id"]},
        {"event": "key.revoked", "actor": alice.user_id, "key": created["apiKey"]["id"]},
        {"event": "key.revoked", "actor": admin.user_id, "key": alice.key_id},
    ]
    assert all(r.details and r.details["user_id"] == alice.user_id for r in rows)
    assert rows[0].details and rows[0].details["prefix"] == created["apiKey"]["prefix"]
    text = orjson.dumps([(r.message, r.details) for r in rows]).decode()
    assert created["key"] not in text and alice.key not in text


async def test_the_keys_of_many_users_are_read_in_one_statement(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every user's keys in one answer (admins): one batch, not one query a user."""
    document = "{ users(first: 10) { edges { node { name apiKeys { label } } } } }"

    async with counted(caplog) as statements:
        data = await ok(client, document, admin)

    edges = data["users"]["edges"]
    assert sorted(e["node"]["name"] for e in edges) == ["alice", "bob", "root"]
    assert all(e["node"]["apiKeys"] == [{"label": ""}] for e in edges)
    listing = [s for s in statements if "api_keys" in s and "revoked_at" in s.split("WHERE")[-1]]
    assert len(listing) == 1, statements
