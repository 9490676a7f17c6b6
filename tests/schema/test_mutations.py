"""Every mutation of the contract through the real HTTP door, and the logs they write."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account, make_config
from tests.schema.gql import CREATE_SESSION, fails, new_session, ok, send_gql

CONFIG = (
    "id modelName modelVersion provider parameters baseUrl apiKeyEnv isDefault version updatedAt"
)
UPDATE = f"""
mutation($id: ID!, $input: UpdateModelConfigInput!) {{
  updateModelConfig(id: $id, input: $input) {{ {CONFIG} }}
}}"""
CREATE_CONFIG = f"""
mutation($input: CreateModelConfigInput!) {{ createModelConfig(input: $input) {{ {CONFIG} }} }}"""
LOGS = "{ logs(first: 100) { edges { node { event actorId details message } } } }"


async def log_events(client: httpx.AsyncClient, admin: Account) -> list[dict[str, Any]]:
    data = await ok(client, LOGS, admin)
    return [edge["node"] for edge in data["logs"]["edges"]]


async def test_create_session_with_the_default_or_a_chosen_config(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    chosen = await make_config(model_name="chosen")

    default = (await ok(client, CREATE_SESSION, alice))["createSession"]
    picked = (
        await ok(client, CREATE_SESSION, alice, {"input": {"modelConfigId": str(chosen.id)}})
    )["createSession"]

    assert default["messageCount"] == 0
    assert default["user"] == {"id": alice.user_id, "name": "alice"}
    assert picked["modelConfig"]["id"] == str(chosen.id)
    assert default["modelConfig"]["id"] != str(chosen.id)
    created = [e for e in await log_events(client, admin) if e["event"] == "session.created"]
    assert {e["details"]["session_id"] for e in created} == {default["id"], picked["id"]}
    assert {e["actorId"] for e in created} == {alice.user_id}


async def test_send_message_stores_both_and_answers_with_metadata(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)

    sent = await send_gql(client, alice, session_id, "hi there", metadata="a plain string")

    user, ai = sent["userMessage"], sent["aiMessage"]
    assert (user["type"], user["content"], user["metadata"]) == (
        "USER",
        "hi there",
        "a plain string",
    )
    assert (ai["type"], ai["content"]) == ("AI", "Echo: hi there")
    assert user["session"] == {"id": session_id}
    assert ai["session"] == {"id": session_id, "messageCount": 2}
    meta = ai["metadata"]
    assert (meta["model_name"], meta["model_version"], meta["provider"]) == ("echo", "1", "echo")
    assert meta["finish_reason"] == "stop"
    assert isinstance(meta["latency_ms"], int | float)
    assert set(meta["usage"]) == {"prompt_tokens", "completion_tokens"}
    answered = [e for e in await log_events(client, admin) if e["event"] == "message.answered"]
    assert [e["details"]["message_id"] for e in answered] == [ai["id"]]


async def test_send_message_replies_over_the_history(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    await send_gql(client, alice, session_id, "first")

    second = await send_gql(client, alice, session_id, "second")

    assert second["aiMessage"]["metadata"]["input_messages"] == 3
    assert second["aiMessage"]["session"]["messageCount"] == 4


async def test_send_message_retry_with_a_client_message_id_stores_nothing_twice(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)

    first = await send_gql(client, alice, session_id, "once", clientMessageId="k-1")
    again = await send_gql(client, alice, session_id, "once", clientMessageId="k-1")

    assert again["userMessage"]["id"] == first["userMessage"]["id"]
    assert again["aiMessage"]["id"] == first["aiMessage"]["id"]
    assert again["aiMessage"]["session"]["messageCount"] == 2


async def test_update_model_config_bumps_the_version_and_the_next_reply_uses_it(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    config = await make_config(model_name="before", parameters={"prefix": "A: "})
    session_id = await new_session(client, alice, str(config.id))
    assert (await send_gql(client, alice, session_id, "x"))["aiMessage"]["content"] == "A: x"

    updated = (
        await ok(
            client,
            UPDATE,
            admin,
            {
                "id": str(config.id),
                "input": {"modelName": "after", "parameters": {"prefix": "B: "}},
            },
        )
    )["updateModelConfig"]

    assert (updated["id"], updated["modelName"], updated["version"]) == (str(config.id), "after", 2)
    assert updated["parameters"] == {"prefix": "B: "}
    assert updated["modelVersion"] == "1"
    reply = (await send_gql(client, alice, session_id, "y"))["aiMessage"]
    assert reply["content"] == "B: y"
    assert (reply["metadata"]["model_name"], reply["metadata"]["config_version"]) == ("after", 2)
    changed = next(
        e for e in await log_events(client, admin) if e["event"] == "model_config.updated"
    )
    assert changed["actorId"] == admin.user_id
    assert changed["details"]["changes"]["model_name"] == {"from": "before", "to": "after"}


async def test_update_model_config_clears_nullable_fields_given_as_null(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config = await make_config(base_url="https://models.example/v1", api_key_env="SOME_KEY")
    variables = {"id": str(config.id), "input": {"baseUrl": None, "apiKeyEnv": None}}

    updated = (await ok(client, UPDATE, admin, variables))["updateModelConfig"]

    assert (updated["baseUrl"], updated["apiKeyEnv"], updated["version"]) == (None, None, 2)
    assert updated["modelName"] == config.model_name  # left out: kept


async def test_update_model_config_refuses_null_for_a_required_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config = await make_config()
    for field in ("modelName", "modelVersion", "provider", "parameters", "isDefault"):
        variables = {"id": str(config.id), "input": {field: None}}

        error = await fails(client, UPDATE, admin, variables, code="BAD_USER_INPUT")

        assert error["extensions"]["field"] == field
        assert error["message"] == f"{field}: must not be null"
    listed = await ok(client, f'{{ modelConfig(id: "{config.id}") {{ version }} }}', admin)
    assert listed["modelConfig"]["version"] == 1


async def test_create_model_config_with_every_field_and_make_it_the_default(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    values = {
        "modelName": "fresh",
        "modelVersion": "7",
        "provider": "echo",
        "parameters": {"prefix": "F: ", "temperature": 0.2},
        "baseUrl": "https://models.example/v1",
        "apiKeyEnv": "FRESH_KEY",
        "isDefault": True,
    }

    created = (await ok(client, CREATE_CONFIG, admin, {"input": values}))["createModelConfig"]

    assert {k: created[k] for k in values} == values
    assert created["version"] == 1
    configs = (await ok(client, "{ modelConfigs { id isDefault } }", alice))["modelConfigs"]
    assert [c["id"] for c in configs if c["isDefault"]] == [created["id"]]
    session_id = await new_session(client, alice)
    assert (await send_gql(client, alice, session_id, "z"))["aiMessage"]["content"] == "F: z"
    made = next(e for e in await log_events(client, admin) if e["event"] == "model_config.created")
    assert made["details"]["config_id"] == created["id"]


async def test_create_model_config_refuses_a_secret_in_parameters(
    client: httpx.AsyncClient, admin: Account
) -> None:
    values = {"modelName": "m", "modelVersion": "1", "provider": "echo"}

    error = await fails(
        client,
        CREATE_CONFIG,
        admin,
        {"input": {**values, "parameters": {"api_key": "sk-123"}}},
        code="BAD_USER_INPUT",
    )

    assert error["extensions"]["field"] == "parameters"
    assert "sk-123" not in error["message"]
