"""3.1 GET /api/v1/model-configs and 3.2 PUT /api/v1/model-configs/{config_id}."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from db.services import model_configs
from tests.factories import Account, create_session, make_account, make_config, send
from tests.rest.expect import ok, refused, url, utc_time

SECRET = "sk-live-THIS-MUST-NEVER-LEAVE-THE-SERVER"
SECRET_WORDS = ("api_key", "apikey", "secret", "password", "token", "authorization")


async def _models(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    data = ok(await client.get(url("/model-configs"), headers=account.headers))
    return {model["config_id"]: model for model in data["models"]}


async def _put(
    client: httpx.AsyncClient, account: Account, config_id: str, body: Any
) -> httpx.Response:
    return await client.put(url(f"/model-configs/{config_id}"), json=body, headers=account.headers)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [key for k, v in value.items() for key in (k, *_keys(v))]
    if isinstance(value, list):
        return [key for item in value for key in _keys(item)]
    return []


async def test_list_shows_every_config_to_every_user(client: httpx.AsyncClient) -> None:
    alice = await make_account()
    made = await make_config(model_name="gpt-test", model_version="2024-06", parameters={"t": 1})
    models = await _models(client, alice)
    default = await model_configs.get_default()
    assert set(models) == {str(default.id), str(made.id)}
    listed = models[str(made.id)]
    assert (listed["model_name"], listed["model_version"]) == ("gpt-test", "2024-06")
    assert listed["parameters"] == {"t": 1}
    for model in models.values():
        assert isinstance(model["config_id"], str)
        assert isinstance(model["model_name"], str) and isinstance(model["model_version"], str)
        assert isinstance(model["parameters"], dict)


async def test_no_secret_is_ever_returned(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CGW_TEST_PROVIDER_KEY", SECRET)
    root = await make_account("root", admin=True)
    config = await make_config(api_key_env="CGW_TEST_PROVIDER_KEY", parameters={"temperature": 0.2})
    response = await client.get(url("/model-configs"), headers=root.headers)
    listed = ok(response)["models"]
    assert SECRET not in response.text
    assert {m["config_id"]: m for m in listed}[str(config.id)]["api_key_env"] == (
        "CGW_TEST_PROVIDER_KEY"
    )
    assert not [key for key in _keys(listed) if key.lower() in SECRET_WORDS]
    updated = await _put(client, root, str(config.id), {"model_version": "2"})
    logs = await client.get(url("/logs"), headers=root.headers)
    assert SECRET not in updated.text + logs.text


async def test_update_changes_the_config_and_bumps_its_version(client: httpx.AsyncClient) -> None:
    root = await make_account("root", admin=True)
    config = await make_config(parameters={"temperature": 0.1})
    before = (await _models(client, root))[str(config.id)]
    body = {"model_name": "echo-2", "model_version": "v2", "parameters": {"temperature": 0.7}}
    data = ok(await _put(client, root, str(config.id), body))
    assert data["config_id"] == str(config.id)
    assert utc_time(data["updated_time"]) >= utc_time(before["updated_time"])
    assert data["version"] == before["version"] + 1
    after = (await _models(client, root))[str(config.id)]
    assert {name: after[name] for name in body} == body
    assert after["version"] == data["version"]
    again = ok(await _put(client, root, str(config.id), {"model_version": "v3"}))
    assert again["version"] == data["version"] + 1


async def test_fields_left_out_are_kept(client: httpx.AsyncClient) -> None:
    root = await make_account("root", admin=True)
    config = await make_config(model_name="keep-me", parameters={"top_p": 0.9})
    ok(await _put(client, root, str(config.id), {"model_version": "9"}))
    after = (await _models(client, root))[str(config.id)]
    assert (after["model_name"], after["model_version"]) == ("keep-me", "9")
    assert after["parameters"] == {"top_p": 0.9}


async def test_the_next_reply_uses_the_new_values(client: httpx.AsyncClient) -> None:
    root = await make_account("root", admin=True)
    session_id = await create_session(client, root)
    config_id = (await model_configs.get_default()).id
    assert ok(await send(client, root, session_id, "hi"))["ai_message"]["content"] == "Echo: hi"
    version = ok(await _put(client, root, str(config_id), {"parameters": {"prefix": "New: "}}))
    reply = ok(await send(client, root, session_id, "hi"))["ai_message"]
    assert reply["content"] == "New: hi"
    assert reply["metadata"]["config_version"] == version["version"]


async def test_provider_may_change_to_a_known_one(client: httpx.AsyncClient) -> None:
    root = await make_account("root", admin=True)
    config = await make_config()
    ok(await _put(client, root, str(config.id), {"provider": "flaky"}))
    session_id = await create_session(client, root, model_config_id=str(config.id))
    assert ok(await send(client, root, session_id))["ai_message"]["metadata"]["provider"] == "flaky"


async def test_null_clears_base_url_and_api_key_env(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    config = await make_config(base_url="https://models.example/v1", api_key_env="SOME_KEY")

    data = ok(await _put(client, admin, str(config.id), {"base_url": None, "api_key_env": None}))

    assert data["version"] == 2
    listed = (await _models(client, alice))[str(config.id)]
    assert (listed["base_url"], listed["api_key_env"]) == (None, None)
    assert listed["model_name"] == config.model_name  # left out: kept
    logs = ok(await client.get(url("/logs"), headers=admin.headers))["logs"]
    updated = next(entry for entry in logs if entry["event"] == "model_config.updated")
    assert updated["details"]["changes"] == {
        "base_url": {"from": "https://models.example/v1", "to": None},
        "api_key_env": {"from": "SOME_KEY", "to": None},
    }


BAD_UPDATES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown provider": ({"provider": "no-such-provider"}, "provider"),
    "api_key parameter": ({"parameters": {"api_key": SECRET}}, "parameters"),
    "API-Key parameter": ({"parameters": {"API-Key": SECRET}}, "parameters"),
    "password parameter": ({"parameters": {"temperature": 1, "password": "x"}}, "parameters"),
    "token parameter": ({"parameters": {"token": "x"}}, "parameters"),
    "key as api_key_env": ({"api_key_env": SECRET}, "api_key_env"),
    "empty model_name": ({"model_name": "  "}, "model_name"),
    "is_default false": ({"is_default": False}, "is_default"),
    "null model_name": ({"model_name": None}, "model_name"),
    "null model_version": ({"model_version": None}, "model_version"),
    "null provider": ({"provider": None}, "provider"),
    "null parameters": ({"parameters": None}, "parameters"),
    "null is_default": ({"is_default": None}, "is_default"),
    "nothing to change": ({}, "body"),
}


@pytest.mark.parametrize("case", BAD_UPDATES)
async def test_bad_update_is_400_and_changes_nothing(client: httpx.AsyncClient, case: str) -> None:
    body, field = BAD_UPDATES[case]
    root = await make_account("root", admin=True)
    config = await make_config(parameters={"temperature": 0.1})
    before = (await _models(client, root))[str(config.id)]
    message = refused(await _put(client, root, str(config.id), body), 400, field=field)
    assert SECRET not in message
    assert (await _models(client, root))[str(config.id)] == before


@pytest.mark.parametrize("config_id", [str(uuid.uuid4()), "not-an-id"])
async def test_unknown_config_is_404(client: httpx.AsyncClient, config_id: str) -> None:
    root = await make_account("root", admin=True)
    assert "model config" in refused(
        await _put(client, root, config_id, {"model_version": "2"}), 404
    )
