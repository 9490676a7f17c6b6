"""ModelConfig.versions (a Relay connection, admins) and rollbackModelConfig."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import ModelConfigVersion
from db.services import model_configs
from db.services.model_configs import SNAPSHOT_FIELDS
from tests.factories import Account, create_session, send
from tests.schema.gql import fails, ok, post, send_gql
from tests.schema.test_compiled_reads import endpoint

CREATE = "mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"
UPDATE = """mutation($id: ID!, $input: UpdateModelConfigInput!) {
  updateModelConfig(id: $id, input: $input) { version } }"""
ROLLBACK = """mutation($id: ID!, $version: Int!) { rollbackModelConfig(id: $id, version: $version) {
  id modelName modelVersion parameters baseUrl apiKeyEnv isDefault version } }"""
VERSIONS = """query($id: ID!, $first: Int, $after: String) { modelConfig(id: $id) {
  versions(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { version createdAt actor { id name } changedFields snapshot } } } } }"""
ALL_VERSIONS = """{ modelConfigs { id modelName version versions(first: 100) { totalCount
  edges { node { version changedFields snapshot actor { id name role } } } } } }"""


async def new_config(client: httpx.AsyncClient, admin: Account, **values: Any) -> str:
    given = {"provider": "echo", "modelName": "versioned", "modelVersion": "1", **values}
    config_id: str = (await ok(client, CREATE, admin, {"input": given}))["createModelConfig"]["id"]
    return config_id


async def change(client: httpx.AsyncClient, admin: Account, config_id: str, **values: Any) -> None:
    await ok(client, UPDATE, admin, {"id": config_id, "input": values})


async def listed(
    client: httpx.AsyncClient, who: Account, config_id: str, **args: Any
) -> dict[str, Any]:
    data = await ok(client, VERSIONS, who, {"id": config_id, **args})
    connection: dict[str, Any] = data["modelConfig"]["versions"]
    return connection


async def test_versions_newest_first_page_by_page(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config_id = await new_config(client, admin)
    for n in range(2, 6):
        await change(client, admin, config_id, modelVersion=str(n))

    pages, after = [], None
    while True:
        page = await listed(client, admin, config_id, first=2, after=after)
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert [[e["node"]["version"] for e in page["edges"]] for page in pages] == [
        [5, 4],
        [3, 2],
        [1],
    ]
    assert {page["totalCount"] for page in pages} == {5}
    assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, True, True]
    first_page = pages[0]
    assert first_page["pageInfo"]["startCursor"] == first_page["edges"][0]["cursor"]
    newest = first_page["edges"][0]["node"]
    assert newest["actor"] == {"id": admin.user_id, "name": admin.name}
    # The config's field names, as the snapshot's keys and REST name them.
    assert newest["changedFields"] == ["model_version"]
    assert newest["snapshot"]["model_version"] == "5"
    oldest = pages[-1]["edges"][0]["node"]
    assert oldest["changedFields"] == sorted(SNAPSHOT_FIELDS)
    assert set(oldest["snapshot"]) == set(SNAPSHOT_FIELDS)
    # Past the oldest: an empty page.
    beyond = await listed(client, admin, config_id, after=pages[-1]["pageInfo"]["endCursor"])
    assert (beyond["edges"], beyond["pageInfo"]["hasNextPage"]) == ([], False)


async def test_actor_is_null_for_the_cli_and_for_a_user_who_is_gone(
    client: httpx.AsyncClient, admin: Account
) -> None:
    default = await model_configs.get_default()  # seeded, as `chat-gateway migrate` does
    config_id = await new_config(client, admin)
    # A user removed from the database by hand: the version keeps their id.
    await ModelConfigVersion.filter(config_id=config_id).update(actor_id=str(uuid.uuid4()))

    seeded = await listed(client, admin, str(default.id))
    orphaned = await listed(client, admin, config_id)

    assert [e["node"]["actor"] for e in seeded["edges"]] == [None]
    assert [e["node"]["actor"] for e in orphaned["edges"]] == [None]


async def test_versions_are_for_admins(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    config_id = await new_config(client, admin)
    document = "query($id: ID!) { modelConfig(id: $id) { id versions { totalCount } } }"

    error = await fails(client, document, alice, {"id": config_id}, code="FORBIDDEN")
    assert error["path"] == ["modelConfig", "versions"]
    # Even a cursor the user made up is not read.
    tampered = 'query($id: ID!) { modelConfig(id: $id) { versions(after: "x") { totalCount } } }'
    await fails(client, tampered, alice, {"id": config_id}, code="FORBIDDEN")
    await fails(client, ALL_VERSIONS, alice, code="FORBIDDEN")
    await fails(client, document, None, {"id": config_id}, code="UNAUTHENTICATED")
    # Everything else of a config stays open to every user.
    plain = await ok(client, "{ modelConfigs { id version } }", alice)
    assert config_id in {config["id"] for config in plain["modelConfigs"]}


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "WyJ2IiwwXQ",  # ["v",0]
        "WyJ2IiwiMSJd",  # ["v","1"]
        "WyJ2IiwyMTQ3NDgzNjQ4XQ",  # ["v",2147483648]
        "WyJtIiwxXQ",  # ["m",1]: a message cursor
    ],
)
async def test_a_cursor_not_of_this_list_is_bad_input(
    client: httpx.AsyncClient, admin: Account, cursor: str
) -> None:
    config_id = await new_config(client, admin)

    error = await fails(
        client, VERSIONS, admin, {"id": config_id, "after": cursor}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == "after"


async def test_rollback_makes_a_new_version_with_the_old_values(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config_id = await new_config(client, admin, parameters={"prefix": "Old: "}, apiKeyEnv="OLD")
    await change(
        client,
        admin,
        config_id,
        modelVersion="2",
        parameters={"prefix": "New: "},
        baseUrl="https://new.example/v1",
        apiKeyEnv=None,
    )

    data = await ok(client, ROLLBACK, admin, {"id": config_id, "version": 1})

    assert data["rollbackModelConfig"] == {
        "id": config_id,
        "modelName": "versioned",
        "modelVersion": "1",
        "parameters": {"prefix": "Old: "},
        "baseUrl": None,
        "apiKeyEnv": "OLD",
        "isDefault": False,
        "version": 3,
    }
    newest = (await listed(client, admin, config_id, first=1))["edges"][0]["node"]
    assert newest["version"] == 3
    assert newest["actor"] == {"id": admin.user_id, "name": admin.name}
    assert newest["changedFields"] == ["api_key_env", "base_url", "model_version", "parameters"]


async def test_rollback_leaves_is_default_alone(client: httpx.AsyncClient, admin: Account) -> None:
    default = await model_configs.get_default()
    config_id = await new_config(client, admin, isDefault=True)
    await change(client, admin, str(default.id), isDefault=True)  # config_id is plain again

    data = await ok(client, ROLLBACK, admin, {"id": config_id, "version": 1})

    assert (data["rollbackModelConfig"]["isDefault"], data["rollbackModelConfig"]["version"]) == (
        False,
        3,
    )
    assert (await model_configs.get_default()).id == default.id


async def test_bad_rollbacks(client: httpx.AsyncClient, admin: Account, alice: Account) -> None:
    config_id = await new_config(client, admin)

    for version in (0, -1):
        error = await fails(
            client, ROLLBACK, admin, {"id": config_id, "version": version}, code="BAD_USER_INPUT"
        )
        assert error["extensions"]["field"] == "version"
    error = await fails(client, ROLLBACK, admin, {"id": config_id, "version": 7}, code="NOT_FOUND")
    assert "version 7" in error["message"]
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        await fails(client, ROLLBACK, admin, {"id": unknown, "version": 1}, code="NOT_FOUND")
    for target in (config_id, str(uuid.uuid4())):
        await fails(client, ROLLBACK, alice, {"id": target, "version": 1}, code="FORBIDDEN")
    # A version past GraphQL's Int is refused before any resolver runs.
    answer = await post(client, ROLLBACK, admin, {"id": config_id, "version": 2**31})
    assert answer.errors and answer.data is None
    assert (await listed(client, admin, config_id))["totalCount"] == 1


async def test_rollback_then_a_reply_shows_the_old_values(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    config_id = await new_config(client, admin, modelName="echo-old", parameters={"prefix": "A: "})
    session_id = await create_session(client, alice, model_config_id=config_id)
    await change(
        client,
        admin,
        config_id,
        modelName="echo-new",
        modelVersion="2",
        parameters={"prefix": "B: "},
    )
    newer = (await send_gql(client, alice, session_id, "hi"))["aiMessage"]

    await ok(client, ROLLBACK, admin, {"id": config_id, "version": 1})
    older = (await send_gql(client, alice, session_id, "hi"))["aiMessage"]

    assert (newer["content"], newer["metadata"]["config_version"]) == ("B: hi", 2)
    assert older["content"] == "A: hi"
    assert {key: older["metadata"][key] for key in ("model_name", "model_version")} == {
        "model_name": "echo-old",
        "model_version": "1",
    }
    assert (older["metadata"]["model_config_id"], older["metadata"]["config_version"]) == (
        config_id,
        3,
    )


async def test_rest_and_graphql_give_the_same_versions(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config_id = await new_config(client, admin, parameters={"temperature": 0.2})
    await change(client, admin, config_id, parameters={"temperature": 0.4}, baseUrl="https://b/v1")
    await ok(client, ROLLBACK, admin, {"id": config_id, "version": 1})

    response = await client.get(
        f"/api/v1/model-configs/{config_id}/versions", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    by_rest = response.json()["data"]
    by_graphql = await listed(client, admin, config_id, first=100)
    rollback_by_rest = await client.post(
        f"/api/v1/model-configs/{config_id}/rollback", json={"version": 2}, headers=admin.headers
    )

    nodes = [edge["node"] for edge in by_graphql["edges"]]
    assert by_rest["total"] == by_graphql["totalCount"] == 3
    assert [
        {
            "version": row["version"],
            "created_time": row["created_time"],
            "actor_id": row["actor_id"],
            "changed_fields": row["changed_fields"],
            "snapshot": row["snapshot"],
        }
        for row in by_rest["versions"]
    ] == [
        {
            "version": node["version"],
            "created_time": node["createdAt"],
            "actor_id": node["actor"]["id"],
            "changed_fields": node["changedFields"],
            "snapshot": node["snapshot"],
        }
        for node in nodes
    ]
    assert rollback_by_rest.status_code == 200, rollback_by_rest.text
    restored = rollback_by_rest.json()["data"]
    config = (
        await ok(
            client,
            "query($id: ID!) { modelConfig(id: $id) { parameters baseUrl version } }",
            admin,
            {"id": config_id},
        )
    )["modelConfig"]
    assert (
        (restored["parameters"], restored["base_url"], restored["version"])
        == (
            config["parameters"],
            config["baseUrl"],
            config["version"],
        )
        == ({"temperature": 0.4}, "https://b/v1", 4)
    )


async def test_versions_are_answered_alike_with_and_without_the_fast_path(
    app: Starlette,
    client: httpx.AsyncClient,
    strawberry_client: httpx.AsyncClient,
    admin: Account,
    alice: Account,
) -> None:
    config_id = await new_config(client, admin, parameters={"temperature": 0.2})
    await change(client, admin, config_id, modelVersion="2")
    session_id = await create_session(client, alice, model_config_id=config_id)
    assert (await send(client, alice, session_id)).status_code == 200
    compiled = endpoint(app).compiled
    before = compiled.answered if compiled is not None else 0

    fast = await client.post("/graphql", json={"query": ALL_VERSIONS}, headers=admin.headers)
    slow = await strawberry_client.post(
        "/graphql", json={"query": ALL_VERSIONS}, headers=admin.headers
    )

    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    # The compiled path does not write `versions`: Strawberry answered both.
    assert (compiled.answered if compiled is not None else 0) == before
    configs = {config["id"]: config for config in fast.json()["data"]["modelConfigs"]}
    ours = configs[config_id]["versions"]
    assert ours["totalCount"] == 2
    assert [edge["node"]["version"] for edge in ours["edges"]] == [2, 1]
    assert [edge["node"]["snapshot"]["model_version"] for edge in ours["edges"]] == ["2", "1"]
    assert {edge["node"]["actor"]["id"] for edge in ours["edges"]} == {admin.user_id}
    default = configs[str((await model_configs.get_default()).id)]["versions"]
    assert [(e["node"]["version"], e["node"]["actor"]) for e in default["edges"]] == [(1, None)]
    # And what the compiled path does write is still answered by it, beside versions.
    plain = "{ modelConfigs { id modelName version } }"
    answer = await client.post("/graphql", json={"query": plain}, headers=admin.headers)
    assert answer.status_code == 200
    if compiled is not None:
        assert compiled.answered == before + 1


async def test_the_query_cost_counts_a_page_of_versions(
    client: httpx.AsyncClient, admin: Account
) -> None:
    document = (
        "{ modelConfigs { versions(first: %d) { edges { node { actor { apiKeys { id } } } } } } }"
    )

    small = await post(client, document % 1, admin)
    large = await post(client, document % 100, admin)

    assert not small.errors, small.errors
    assert large.data is None
    assert "could return up to" in large.error()["message"]
