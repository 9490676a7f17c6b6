"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document describing exactly the served routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.routing import Route

from tests.rest.openapi_check import OPENAPI_PATH, PREFIX, fetch_document
from tests.rest.openapi_structure import OPENAPI_31_STRUCTURE

# The contract's field names (seed-api-design.zh.md), by the document's schema names.
CONTRACT = {
    "CreateSessionBody": {"user_id", "model_config_id"},
    "SessionCreated": {"session_id"},
    "MessageHistory": {"messages", "total"},
    "MessageOut": {"message_id", "type", "content", "created_time", "metadata"},
    "SendMessageBody": {"user_id", "message", "metadata"},
    "SendResult": {"user_message", "ai_message"},
    "UserMessageRef": {"message_id", "created_time"},
    "AiMessageOut": {"message_id", "content", "created_time", "metadata"},
    "ModelConfigList": {"models"},
    "ModelConfigOut": {"config_id", "model_name", "model_version", "parameters"},
    "UpdateModelConfigBody": {"model_name", "model_version", "parameters"},
    "ModelConfigUpdated": {"config_id", "updated_time"},
    "LogList": {"logs", "total"},
    "LogOut": {"log_id", "level", "message", "created_time"},
    "ErrorEnvelope": {"code", "message", "data"},
    # conversations.md's REST extensions
    "UpdateSessionBody": {"title", "model_config_id", "archived"},
    "SessionOut": {"session_id", "title", "created_time", "updated_time", "message_count"},
    "SessionList": {"sessions", "total"},
    "SessionDeleted": {"session_id"},
}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    return await fetch_document(client)


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair below `node`."""
    if isinstance(node, dict):
        for name, child in node.items():
            yield name, child
            yield from _walk(child, name)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child, key)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, ref
        node = node[part]
    return node


def _served(app: Starlette) -> set[tuple[str, str]]:
    """(path, method) the app routes under /api/v1; HEAD is GET's implicit twin."""
    return {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        and route.path.startswith(PREFIX + "/")
        and route.path != OPENAPI_PATH
        for method in route.methods or ()
        if method != "HEAD"
    }


async def test_document_has_the_openapi_3_1_structure(document: dict[str, Any]) -> None:
    Draft202012Validator(OPENAPI_31_STRUCTURE).validate(document)
    assert document["openapi"].startswith("3.1.")


async def test_every_schema_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    schemas = [value for key, value in _walk(document) if key == "schema"]
    schemas += list(document["components"]["schemas"].values())
    assert len(schemas) > len(document["components"]["schemas"])
    for schema in schemas:
        Draft202012Validator.check_schema(schema)


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = {value for key, value in _walk(document) if key == "$ref"}
    assert refs
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict)


async def test_operations_are_well_formed(document: dict[str, Any]) -> None:
    operations = [op for item in document["paths"].values() for op in item.values()]
    ids = [operation["operationId"] for operation in operations]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        in_template = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            parameters = operation.get("parameters", [])
            named = [(p["name"], p["in"]) for p in parameters]
            assert len(named) == len(set(named)), path
            assert {name for name, where in named if where == "path"} == in_template, path
    for requirement in document["security"]:
        assert set(requirement) <= set(document["components"]["securitySchemes"])


async def test_documents_exactly_the_served_routes(
    app: Starlette, document: dict[str, Any]
) -> None:
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _served(app)
    # The original design's routes, then the conversation features' (conversations.md).
    assert documented == {
        ("/api/v1/sessions", "post"),
        ("/api/v1/sessions/{session_id}/messages", "get"),
        ("/api/v1/sessions/{session_id}/messages", "post"),
        ("/api/v1/sessions/{session_id}/messages/{message_id}/stream", "get"),
        ("/api/v1/sessions/{session_id}/cancel", "post"),
        ("/api/v1/model-configs", "get"),
        ("/api/v1/model-configs/{config_id}", "put"),
        ("/api/v1/logs", "get"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/{session_id}", "patch"),
        ("/api/v1/sessions/{session_id}", "delete"),
        ("/api/v1/sessions/{session_id}/regenerate", "post"),
        ("/api/v1/messages/{message_id}/feedback", "put"),
        ("/api/v1/search", "get"),
        ("/api/v1/sessions/{session_id}/export", "get"),
        ("/api/v1/usage", "get"),
        ("/api/v1/model-configs/{config_id}/versions", "get"),
        ("/api/v1/model-configs/{config_id}/rollback", "post"),
    }


async def test_every_documented_operation_is_served(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    for template, item in document["paths"].items():
        path = template.format(
            session_id="some-session", config_id="some-config", message_id="some-message"
        )
        for method in item:
            response = await client.request(method.upper(), path)
            assert response.status_code == 401, (method, template)  # routed, then refused


async def test_schemas_carry_the_contract_field_names(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, fields in CONTRACT.items():
        assert fields <= set(schemas[name]["properties"]), name
    for name in (
        "SessionCreated",
        "MessageOut",
        "UserMessageRef",
        "LogOut",
        "ModelConfigOut",
        "SessionOut",
    ):
        required = set(schemas[name]["required"])
        assert CONTRACT[name] - {"metadata"} <= required, name
