"""GET /api/v1/model-configs/{config_id}/versions and POST .../rollback (admins)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from db.services import model_configs
from db.services.model_configs import SNAPSHOT_FIELDS
from tests.factories import Account, create_session, send
from tests.rest.expect import ok, refused, url, utc_time
from tests.rest.openapi_check import fetch_document
from tests.schema.gql import ok as gql_ok

CREATE = """mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"""


async def new_config(client: httpx.AsyncClient, admin: Account, **values: Any) -> str:
    """A config created through GraphQL (REST has no create route), as an admin does."""
    given = {"provider": "echo", "modelName": "versioned", "modelVersion": "1", **values}
    data = await gql_ok(client, CREATE, admin, {"input": given})
    config_id: str = data["createModelConfig"]["id"]
    return config_id


async def put(
    client: httpx.AsyncClient, who: Account, config_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.put(url(f"/model-configs/{config_id}"), json=body, headers=who.headers)
    data: dict[str, Any] = ok(response)
    return data


async def versions(
    client: httpx.AsyncClient, who: Account, config_id: str, **params: Any
) -> httpx.Response:
    return await client.get(
        url(f"/model-configs/{config_id}/versions"), params=params, headers=who.headers
    )


async def rollback(
    client: httpx.AsyncClient, who: Account, config_id: str, body: Any
) -> httpx.Response:
    return await client.post(
        url(f"/model-configs/{config_id}/rollback"), json=body, headers=who.headers
    )


async def test_versions_newest_first_in_pages(client: httpx.AsyncClient, admin: Account) -> None:
    config_id = await new_config(client, admin, parameters={"temperature": 0.1})
    for n in range(2, 6):
        await put(client, admin, config_id, {"model_version": str(n)})

    pages = [
        ok(await versions(client, admin, config_id, page_size=2, page_num=page))
        for page in (1, 2, 3, 4)
    ]

    assert [page["total"] for page in pages] == [5, 5, 5, 5]
    listed = [row["version"] for page in pages for row in page["versions"]]
    assert listed == [5, 4, 3, 2, 1]
    assert pages[3]["versions"] == []
    newest, oldest = pages[0]["versions"][0], pages[2]["versions"][0]
    assert set(newest) >= {
        "config_id",
        "version",
        "created_time",
        "actor_id",
        "changed_fields",
        "snapshot",
    }
    assert newest["config_id"] == config_id
    assert (newest["actor_id"], newest["changed_fields"]) == (admin.user_id, ["model_version"])
    assert newest["snapshot"]["model_version"] == "5"
    assert oldest["changed_fields"] == sorted(SNAPSHOT_FIELDS)
    assert oldest["snapshot"] == {
        "provider": "echo",
        "model_name": "versioned",
        "model_version": "1",
        "parameters": {"temperature": 0.1},
        "base_url": None,
        "api_key_env": None,
        "is_default": False,
    }
    times = [utc_time(row["created_time"]) for page in pages for row in page["versions"]]
    assert times == sorted(times, reverse=True)


async def test_the_seeded_config_was_made_by_no_one(
    client: httpx.AsyncClient, admin: Account
) -> None:
    default = await model_configs.get_default()

    data = ok(await versions(client, admin, str(default.id)))

    assert data["total"] == 1
    assert (data["versions"][0]["version"], data["versions"][0]["actor_id"]) == (1, None)


async def test_rollback_answers_the_config_with_the_old_values(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config_id = await new_config(client, admin, parameters={"prefix": "Old: "})
    await put(client, admin, config_id, {"model_version": "2", "parameters": {"prefix": "New: "}})

    data = ok(await rollback(client, admin, config_id, {"version": 1}))

    assert data["config_id"] == config_id
    assert (data["model_version"], data["parameters"], data["version"]) == (
        "1",
        {"prefix": "Old: "},
        3,
    )
    listed = {
        m["config_id"]: m
        for m in ok(await client.get(url("/model-configs"), headers=admin.headers))["models"]
    }
    assert listed[config_id] == data
    newest = ok(await versions(client, admin, config_id, page_size=1))["versions"][0]
    assert (newest["version"], newest["actor_id"]) == (3, admin.user_id)
    assert newest["changed_fields"] == ["model_version", "parameters"]


async def test_rollback_then_a_reply_uses_the_old_values(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    config_id = await new_config(
        client, admin, modelName="echo-old", parameters={"prefix": "Old: "}
    )
    session_id = await create_session(client, alice, model_config_id=config_id)
    await put(
        client,
        admin,
        config_id,
        {"model_name": "echo-new", "model_version": "2", "parameters": {"prefix": "New: "}},
    )
    newer = ok(await send(client, alice, session_id, "hi"))["ai_message"]

    ok(await rollback(client, admin, config_id, {"version": 1}))
    older = ok(await send(client, alice, session_id, "hi"))["ai_message"]

    assert newer["content"] == "New: hi"
    assert (newer["metadata"]["model_name"], newer["metadata"]["config_version"]) == (
        "echo-new",
        2,
    )
    assert older["content"] == "Old: hi"
    metadata = older["metadata"]
    assert (metadata["model_name"], metadata["model_version"]) == ("echo-old", "1")
    assert (metadata["model_config_id"], metadata["config_version"]) == (config_id, 3)


async def test_rollback_is_logged_with_its_actor(client: httpx.AsyncClient, admin: Account) -> None:
    config_id = await new_config(client, admin)
    await put(client, admin, config_id, {"model_name": "renamed"})

    ok(await rollback(client, admin, config_id, {"version": 1}))

    logs = ok(await client.get(url("/logs"), headers=admin.headers))["logs"]
    by_event = {entry["event"]: entry for entry in logs}
    entry = by_event["model_config.rolled_back"]
    assert entry["actor_id"] == admin.user_id
    assert entry["details"]["config_id"] == config_id
    assert (entry["details"]["restored_version"], entry["details"]["version"]) == (1, 3)
    assert entry["details"]["changes"] == {"model_name": {"from": "renamed", "to": "versioned"}}
    for event in ("model_config.created", "model_config.updated"):
        assert by_event[event]["actor_id"] == admin.user_id
        assert by_event[event]["details"]["config_id"] == config_id


async def test_only_admins_and_a_user_learns_nothing(
    client: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    config_id = await new_config(client, admin)

    for target in (config_id, str(uuid.uuid4())):
        refused(await versions(client, alice, target), 403)
        refused(await versions(client, alice, target, page_size="x"), 403)
        refused(await rollback(client, alice, target, {"version": 1}), 403)
        refused(await rollback(client, alice, target, {"version": "x"}), 403)

    assert ok(await versions(client, admin, config_id))["total"] == 1


@pytest.mark.parametrize("config_id", [str(uuid.uuid4()), "not-an-id"])
async def test_unknown_config_is_404(
    client: httpx.AsyncClient, admin: Account, config_id: str
) -> None:
    assert "model config" in refused(await versions(client, admin, config_id), 404)
    assert "model config" in refused(await rollback(client, admin, config_id, {"version": 1}), 404)


async def test_a_whole_number_written_as_a_float_is_that_number(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config_id = await new_config(client, admin)

    data = ok(await rollback(client, admin, config_id, {"version": 1.0}))

    assert data["version"] == 2
    refused(await rollback(client, admin, config_id, {"version": 7.0}), 404, field="version")


async def test_unknown_version_is_404_naming_it(client: httpx.AsyncClient, admin: Account) -> None:
    config_id = await new_config(client, admin)

    for version in (2, 2**31 - 1):
        refused(
            await rollback(client, admin, config_id, {"version": version}), 404, field="version"
        )

    assert ok(await versions(client, admin, config_id))["total"] == 1


BAD_ROLLBACKS: dict[str, tuple[Any, str]] = {
    "zero": ({"version": 0}, "version"),
    "negative": ({"version": -3}, "version"),
    "past 32 bits": ({"version": 2**31}, "version"),
    "a string": ({"version": "1"}, "version"),
    "a fraction": ({"version": 1.5}, "version"),
    "a huge whole number": ({"version": 1e300}, "version"),
    "a boolean": ({"version": True}, "version"),
    "null": ({"version": None}, "version"),
    "missing": ({}, "version"),
    "not an object": ([1], "body"),
}


@pytest.mark.parametrize("case", BAD_ROLLBACKS)
async def test_bad_rollback_is_400_and_changes_nothing(
    client: httpx.AsyncClient, admin: Account, case: str
) -> None:
    body, field = BAD_ROLLBACKS[case]
    config_id = await new_config(client, admin)

    refused(await rollback(client, admin, config_id, body), 400, field=field)

    assert ok(await versions(client, admin, config_id))["total"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"page_num": "x"}, "page_num"),
    ],
)
async def test_bad_page_is_400(
    client: httpx.AsyncClient, admin: Account, params: dict[str, Any], field: str
) -> None:
    default = await model_configs.get_default()
    refused(await versions(client, admin, str(default.id), **params), 400, field=field)


async def test_openapi_describes_both_routes(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)
    listing = document["paths"]["/api/v1/model-configs/{config_id}/versions"]["get"]
    restore = document["paths"]["/api/v1/model-configs/{config_id}/rollback"]["post"]
    schemas = document["components"]["schemas"]

    assert {p["name"] for p in listing["parameters"]} == {"config_id", "page_size", "page_num"}
    assert "Admins only" in listing["description"] and "Admins only" in restore["description"]
    assert {"403", "404"} <= set(listing["responses"]) & set(restore["responses"])
    assert schemas["RollbackModelConfigBody"]["required"] == ["version"]
    assert schemas["RollbackModelConfigBody"]["properties"]["version"]["minimum"] == 1
    out = schemas["ModelConfigVersionOut"]["properties"]
    assert {"version", "created_time", "actor_id", "changed_fields", "snapshot"} <= set(out)
    assert set(schemas["ModelConfigSnapshot"]["properties"]) == set(SNAPSHOT_FIELDS)
    answer = restore["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["data"] == {"$ref": "#/components/schemas/ModelConfigOut"}
