"""The same data through both doors gives the same answer, field by field."""

from __future__ import annotations

from typing import Any

import httpx

from db.services import auth_failures
from tests.factories import Account, create_session, make_config, send
from tests.schema.gql import ok, send_gql

HISTORY = """
query($s: ID!) { session(id: $s) { messageCount messages(first: 100) { totalCount
  edges { node { id type content createdAt metadata } } } } }"""
CONFIGS = """{ modelConfigs { id modelName modelVersion parameters provider baseUrl apiKeyEnv
  isDefault version updatedAt } }"""
LOGS = """{ logs(first: 100) { totalCount
  edges { node { id level message createdAt event actorId details } } } }"""


async def rest(client: httpx.AsyncClient, who: Account, path: str) -> Any:
    response = await client.get(f"/api/v1{path}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def some_data(client: httpx.AsyncClient, alice: Account, admin: Account) -> str:
    """A session with messages sent through both doors (string and object metadata),
    two configs (one updated), and the log entries all that wrote."""
    config = await make_config(
        model_name="parity", parameters={"prefix": "P: "}, base_url="https://x.example/v1"
    )
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    assert (await send(client, alice, session_id, "one", metadata="a string")).status_code == 200
    await send_gql(client, alice, session_id, "two", metadata={"tags": ["a", "b"], "n": 1.5})
    assert (await send(client, alice, session_id, "three")).status_code == 200
    body = {"parameters": {"prefix": "Q: ", "temperature": 0.3}}
    updated = await client.put(
        f"/api/v1/model-configs/{config.id}", json=body, headers=admin.headers
    )
    assert updated.status_code == 200, updated.text
    await send_gql(client, alice, session_id, "four")
    bad_key = {"Authorization": "Bearer cgw_nope"}
    assert (await client.get("/api/v1/logs", headers=bad_key)).status_code == 401
    await auth_failures.flush()  # its count is logged as a WARNING
    return session_id


async def test_history_is_the_same(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await some_data(client, alice, admin)

    by_rest = await rest(client, alice, f"/sessions/{session_id}/messages?page_size=100")
    by_graphql = (await ok(client, HISTORY, alice, {"s": session_id}))["session"]

    nodes = [edge["node"] for edge in by_graphql["messages"]["edges"]]
    assert (
        by_rest["total"] == by_graphql["messageCount"] == by_graphql["messages"]["totalCount"] == 8
    )
    assert len(by_rest["messages"]) == len(nodes) == 8
    for message, node in zip(by_rest["messages"], nodes, strict=True):
        assert node == {
            "id": message["message_id"],
            "type": message["type"].upper(),
            "content": message["content"],
            "createdAt": message["created_time"],
            "metadata": message["metadata"],
        }
    assert nodes[0]["metadata"] == "a string"
    assert nodes[2]["metadata"] == {"tags": ["a", "b"], "n": 1.5}
    assert [node["content"] for node in nodes[5::2]] == ["P: three", "Q: four"]


async def test_model_configs_are_the_same(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    await some_data(client, alice, admin)

    by_rest = (await rest(client, alice, "/model-configs"))["models"]
    by_graphql = (await ok(client, CONFIGS, alice))["modelConfigs"]

    assert len(by_rest) == len(by_graphql) == 2
    for config, node in zip(by_rest, by_graphql, strict=True):
        assert node == {
            "id": config["config_id"],
            "modelName": config["model_name"],
            "modelVersion": config["model_version"],
            "parameters": config["parameters"],
            "provider": config["provider"],
            "baseUrl": config["base_url"],
            "apiKeyEnv": config["api_key_env"],
            "isDefault": config["is_default"],
            "version": config["version"],
            "updatedAt": config["updated_time"],
        }
    assert [node["version"] for node in by_graphql] == [1, 2]


async def test_logs_are_the_same(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    await some_data(client, alice, admin)

    by_graphql = (await ok(client, LOGS, admin))["logs"]
    by_rest = await rest(client, admin, "/logs?page_size=100")

    nodes = [edge["node"] for edge in by_graphql["edges"]]
    assert by_rest["total"] == by_graphql["totalCount"] == len(nodes) == len(by_rest["logs"])
    for entry, node in zip(by_rest["logs"], nodes, strict=True):
        assert node == {
            "id": entry["log_id"],
            "level": entry["level"].upper(),
            "message": entry["message"],
            "createdAt": entry["created_time"],
            "event": entry["event"],
            "actorId": entry["actor_id"],
            "details": entry["details"],
        }
    events: set[str] = {node["event"] for node in nodes}
    assert {"session.created", "message.answered", "model_config.updated"} <= events
    assert len({node["level"] for node in nodes}) >= 2
