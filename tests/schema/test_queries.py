"""Every query of the contract through the real HTTP door: me, session, sessions,
modelConfigs, modelConfig, logs (and a query by GET)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx

from tests.factories import Account, make_config
from tests.schema.gql import new_session, ok, send_gql

SESSION = """
query($id: ID!) {
  session(id: $id) {
    id createdAt messageCount
    user { id name role }
    modelConfig { id modelName provider isDefault }
    messages { totalCount edges { cursor node { id type content metadata createdAt
      session { id } } } }
  }
}"""
CONFIG_FIELDS = (
    "id modelName modelVersion provider parameters baseUrl apiKeyEnv isDefault version updatedAt"
)


def is_utc_iso(value: str) -> bool:
    moment = datetime.fromisoformat(value)
    return value.endswith("+00:00") and moment.utcoffset() == timedelta(0)


async def test_me_is_the_caller(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    assert await ok(client, "{ me { id name role } }", alice) == {
        "me": {"id": alice.user_id, "name": "alice", "role": "USER"}
    }
    assert (await ok(client, "{ me { id role } }", admin))["me"] == {
        "id": admin.user_id,
        "role": "ADMIN",
    }


async def test_session_with_its_user_config_and_messages(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    sent = await send_gql(client, alice, session_id, "hello", metadata={"k": [1, None]})

    session = (await ok(client, SESSION, alice, {"id": session_id}))["session"]

    assert session["id"] == session_id
    assert is_utc_iso(session["createdAt"])
    assert session["messageCount"] == 2
    assert session["user"] == {"id": alice.user_id, "name": "alice", "role": "USER"}
    assert session["modelConfig"]["modelName"] == "echo"
    assert session["modelConfig"]["isDefault"] is True
    nodes = [edge["node"] for edge in session["messages"]["edges"]]
    assert session["messages"]["totalCount"] == 2
    assert [(n["id"], n["type"], n["content"]) for n in nodes] == [
        (sent["userMessage"]["id"], "USER", "hello"),
        (sent["aiMessage"]["id"], "AI", "Echo: hello"),
    ]
    assert nodes[0]["metadata"] == {"k": [1, None]}
    assert nodes[1]["metadata"]["finish_reason"] == "stop"
    assert all(n["session"] == {"id": session_id} and is_utc_iso(n["createdAt"]) for n in nodes)


async def test_session_is_null_when_absent(client: httpx.AsyncClient, alice: Account) -> None:
    for absent in (str(uuid.uuid4()), "not-a-uuid"):
        assert await ok(client, SESSION, alice, {"id": absent}) == {"session": None}


async def test_sessions_are_the_callers_newest_first(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    ids = [await new_session(client, alice) for _ in range(3)]
    await new_session(client, bob)

    data = await ok(
        client,
        "{ sessions { totalCount edges { node { id user { name } } } } }",
        alice,
    )

    assert data["sessions"]["totalCount"] == 3
    assert [e["node"]["id"] for e in data["sessions"]["edges"]] == ids[::-1]
    assert {e["node"]["user"]["name"] for e in data["sessions"]["edges"]} == {"alice"}


async def test_model_configs_with_every_field(client: httpx.AsyncClient, alice: Account) -> None:
    made = await make_config(
        model_name="gpt-test",
        model_version="2026-01",
        parameters={"temperature": 0.5, "max_tokens": 64},
        base_url="https://models.example/v1",
        api_key_env="TEST_MODEL_KEY",
    )

    configs = (await ok(client, f"{{ modelConfigs {{ {CONFIG_FIELDS} }} }}", alice))["modelConfigs"]

    assert [c["modelName"] for c in configs] == ["echo", "gpt-test"]
    listed = configs[1]
    assert listed == {
        "id": str(made.id),
        "modelName": "gpt-test",
        "modelVersion": "2026-01",
        "provider": "echo",
        "parameters": {"temperature": 0.5, "max_tokens": 64},
        "baseUrl": "https://models.example/v1",
        "apiKeyEnv": "TEST_MODEL_KEY",
        "isDefault": False,
        "version": 1,
        "updatedAt": listed["updatedAt"],
    }
    assert is_utc_iso(listed["updatedAt"])
    assert configs[0]["isDefault"] is True


async def test_model_config_by_id(client: httpx.AsyncClient, alice: Account) -> None:
    made = await make_config(model_name="one")
    query = f"query($id: ID!) {{ modelConfig(id: $id) {{ {CONFIG_FIELDS} }} }}"

    found = (await ok(client, query, alice, {"id": str(made.id)}))["modelConfig"]

    assert (found["id"], found["modelName"], found["version"]) == (str(made.id), "one", 1)
    for absent in (str(uuid.uuid4()), "nope"):
        assert await ok(client, query, alice, {"id": absent}) == {"modelConfig": None}


async def test_logs_record_operations_for_admins(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)

    data = await ok(
        client,
        "{ logs { totalCount edges { node { id level message createdAt event actorId details } } }"
        " }",
        admin,
    )

    nodes = [edge["node"] for edge in data["logs"]["edges"]]
    assert data["logs"]["totalCount"] == len(nodes) >= 1
    created = next(n for n in nodes if n["event"] == "session.created")
    assert created["level"] == "INFO"
    assert created["actorId"] == alice.user_id
    assert created["details"]["session_id"] == session_id
    assert "alice" in created["message"]
    assert is_utc_iso(created["createdAt"])


async def test_a_query_by_get(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "{ me { name } }"},
        headers={**alice.headers, "Accept": "application/json"},
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"name": "alice"}}}
