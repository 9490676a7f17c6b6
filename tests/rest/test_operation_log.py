"""The operations rest-v1.md says the system log records, each seen through GET /logs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.services import auth_failures, model_configs, users
from tests.factories import Account, create_session, make_config, send
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url


async def _entries(client: httpx.AsyncClient, root: Account, event: str) -> list[dict[str, Any]]:
    data = ok(await client.get(url("/logs"), headers=root.headers))
    return [entry for entry in data["logs"] if entry["event"] == event]


async def test_session_created(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    session_id = await create_session(client, alice)
    [entry] = await _entries(client, admin, "session.created")
    assert entry["level"] == "info"
    assert entry["actor_id"] == alice.user_id
    assert entry["details"]["session_id"] == session_id
    assert "session created" in entry["message"] and "alice" in entry["message"]


async def test_message_answered_with_model_and_latency(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await create_session(client, alice)
    reply = ok(await send(client, alice, session_id))["ai_message"]
    [entry] = await _entries(client, admin, "message.answered")
    assert entry["level"] == "info"
    details = entry["details"]
    assert (details["model_name"], details["provider"]) == ("echo", "echo")
    assert details["latency_ms"] == reply["metadata"]["latency_ms"]
    assert details["message_id"] == reply["message_id"]
    assert f"{details['latency_ms']} ms" in entry["message"] and "echo" in entry["message"]


async def test_model_config_changed_says_who_and_what(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config = await model_configs.get_default()
    # The provider is sent as it is (with blanks): no change, so not listed as one.
    body = {"model_version": "2", "parameters": {"temperature": 0.3}, "provider": " echo "}
    ok(await client.put(url(f"/model-configs/{config.id}"), json=body, headers=admin.headers))
    [entry] = await _entries(client, admin, "model_config.updated")
    assert entry["actor_id"] == admin.user_id
    assert "root" in entry["message"]
    assert "model_version" in entry["message"] and "parameters" in entry["message"]
    assert "provider" not in entry["message"]
    assert entry["details"]["changes"] == {
        "model_version": {"from": "1", "to": "2"},
        "parameters": {"from": {}, "to": {"temperature": 0.3}},
    }


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no credentials"),
        ("Basic dXNlcjpwYXNz", "no credentials"),
        ("Bearer cgw_not-a-real-key", "unknown API key"),
        ("revoked", "revoked API key"),
    ],
)
async def test_authentication_failures(
    client: httpx.AsyncClient,
    alice: Account,
    admin: Account,
    authorization: str | None,
    reason: str,
) -> None:
    if authorization == "revoked":
        await users.revoke_key(key_id_or_prefix=alice.key_id)
        authorization = f"Bearer {alice.key}"
    headers = {"Authorization": authorization} if authorization else {}
    for _ in range(3):
        refused(await client.get(url("/model-configs"), headers=headers), 401)
    assert await _entries(client, admin, "auth.failed") == []  # the requests wrote nothing

    assert await auth_failures.flush() == 1
    [entry] = await _entries(client, admin, "auth.failed")  # one entry counts all three
    assert entry["level"] == "warning"
    assert entry["message"].startswith("authentication failed") and reason in entry["message"]
    assert "3 times" in entry["message"] and entry["details"]["count"] == 3
    assert entry["details"]["source"] == "GET /api/v1/model-configs"
    logged = str(entry)
    assert alice.key not in logged and "cgw_not-a-real-key" not in logged  # no secret kept
    assert entry["actor_id"] == (alice.user_id if reason.startswith("revoked") else None)


async def test_permission_denials_are_counted_with_the_actor_and_written_as_one_entry(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    for _ in range(2):
        refused(await client.get(url("/logs"), headers=alice.headers), 403)
    body = {"user_id": admin.user_id}
    refused(await client.post(url("/sessions"), json=body, headers=alice.headers), 403)
    assert await _entries(client, admin, "auth.denied") == []  # the requests wrote nothing

    assert await auth_failures.flush() == 2
    entries = {e["details"]["source"]: e for e in await _entries(client, admin, "auth.denied")}
    assert sorted(entries) == ["GET /api/v1/logs", "POST /api/v1/sessions"]
    logs_denied = entries["GET /api/v1/logs"]
    assert logs_denied["level"] == "warning" and logs_denied["details"]["count"] == 2
    assert logs_denied["message"] == (
        "permission denied: only admins may read the system logs (2 times, GET /api/v1/logs)"
    )
    assert {e["actor_id"] for e in entries.values()} == {alice.user_id}


async def test_authentication_failures_are_counted_by_route_not_by_path(
    client: httpx.AsyncClient,
    admin: Account,
) -> None:
    """Any client can vary a path without end (a NUL in it too): the groups cannot grow."""
    for session_id in ("%00", "a", "b", "c" * 300):
        refused(await client.get(url(f"/sessions/{session_id}/messages")), 401)
    await auth_failures.flush()
    [entry] = await _entries(client, admin, "auth.failed")
    assert entry["details"]["source"] == "GET /api/v1/sessions/{session_id}/messages"
    assert entry["details"]["count"] == 4


async def test_model_provider_failure(
    client: httpx.AsyncClient, alice: Account, admin: Account, flaky: FlakyProvider
) -> None:
    config = await make_config(provider="flaky", model_name="flaky-model")
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    flaky.fail_next()
    refused(await send(client, alice, session_id), 500)
    [entry] = await _entries(client, admin, "model.failed")
    assert entry["level"] == "error"
    assert entry["actor_id"] == alice.user_id
    assert "flaky-model" in entry["message"] and "failed" in entry["message"]
    details = entry["details"]
    assert (details["provider"], details["status"]) == ("flaky", 503)
    assert details["session_id"] == session_id
    assert await _entries(client, admin, "message.answered") == []
