"""1.1 POST /api/v1/sessions."""

from __future__ import annotations

import uuid

import httpx
import pytest

from db.services import model_configs
from tests.factories import Account, make_config, send
from tests.rest.expect import ok, refused, url


async def _history_total(
    client: httpx.AsyncClient, session_id: str, headers: dict[str, str]
) -> int:
    response = await client.get(url(f"/sessions/{session_id}/messages"), headers=headers)
    total: int = ok(response)["total"]
    return total


async def test_created_with_the_default_config(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        url("/sessions"), json={"user_id": alice.user_id}, headers=alice.headers
    )
    data = ok(response)
    assert isinstance(data["session_id"], str) and data["session_id"]
    assert await _history_total(client, data["session_id"], alice.headers) == 0
    reply = ok(await send(client, alice, data["session_id"]))["ai_message"]
    default = await model_configs.get_default()
    assert reply["metadata"]["model_config_id"] == str(default.id)


async def test_explicit_null_config_means_the_default(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await make_config(model_name="not-the-default")
    body = {"user_id": alice.user_id, "model_config_id": None}
    session_id = ok(await client.post(url("/sessions"), json=body, headers=alice.headers))[
        "session_id"
    ]
    reply = ok(await send(client, alice, session_id))["ai_message"]
    assert reply["metadata"]["model_name"] == "echo"


async def test_created_with_a_named_config(client: httpx.AsyncClient, alice: Account) -> None:
    config = await make_config(model_name="echo-named", model_version="7")
    body = {"user_id": alice.user_id, "model_config_id": str(config.id)}
    session_id = ok(await client.post(url("/sessions"), json=body, headers=alice.headers))[
        "session_id"
    ]
    metadata = ok(await send(client, alice, session_id))["ai_message"]["metadata"]
    assert metadata["model_config_id"] == str(config.id)
    assert (metadata["model_name"], metadata["model_version"]) == ("echo-named", "7")


@pytest.mark.parametrize("config_id", [str(uuid.uuid4()), "not-an-id", ""])
async def test_unknown_config_is_404(
    client: httpx.AsyncClient, alice: Account, config_id: str
) -> None:
    body = {"user_id": alice.user_id, "model_config_id": config_id}
    message = refused(await client.post(url("/sessions"), json=body, headers=alice.headers), 404)
    assert "model config" in message


async def test_each_session_gets_its_own_id(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"user_id": alice.user_id}
    ids = {
        ok(await client.post(url("/sessions"), json=body, headers=alice.headers))["session_id"]
        for _ in range(3)
    }
    assert len(ids) == 3


async def test_admin_creates_a_session_owned_by_the_named_user(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    body = {"user_id": alice.user_id}
    session_id = ok(await client.post(url("/sessions"), json=body, headers=admin.headers))[
        "session_id"
    ]
    assert await _history_total(client, session_id, alice.headers) == 0
    refused(await client.get(url(f"/sessions/{session_id}/messages"), headers=bob.headers), 404)
    ok(await send(client, alice, session_id))


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "nobody"])
async def test_admin_acting_for_an_unknown_user_is_404(
    client: httpx.AsyncClient, admin: Account, user_id: str
) -> None:
    response = await client.post(url("/sessions"), json={"user_id": user_id}, headers=admin.headers)
    assert "user" in refused(response, 404)
