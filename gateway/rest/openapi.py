"""The OpenAPI 3.1 document of /api/v1, generated from the endpoint declarations."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from db.ports import Limits
from db.services.config_rules import BASE_URL_PATTERN, parameter_schemas
from db.services.text import BLANK, END
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import ErrorEnvelope, UpdateModelConfigBody

_REF = "#/components/schemas/{model}"
_ERROR_MEANING = {
    400: "bad parameters (the message names the field)",
    401: "no or unknown API key",
    403: "the caller may not do this",
    404: "not found (or not the caller's)",
    405: "method not allowed",
    500: "internal error or AI model failure",
}


def document(
    endpoints: list[Endpoint], *, prefix: str, limits: Limits, providers: Collection[str]
) -> dict[str, Any]:
    """The document of this server: limits and providers are its settings' and registry's."""
    models: list[tuple[type[BaseModel], Any]] = [(ErrorEnvelope, "serialization")]
    for endpoint in endpoints:
        if endpoint.response is not None:
            models.append((endpoint.response, "serialization"))
        if endpoint.body is not None:
            models.append((endpoint.body, "validation"))
    refs, definitions = models_json_schema(models, ref_template=_REF)
    schemas = definitions.get("$defs", {})
    _describe_server_rules(schemas, limits=limits, providers=providers)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, refs)
        paths.setdefault(prefix + endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ai-chat-gateway REST compatibility layer",
            "version": "1",
            "description": (
                "Every body is an envelope: {code, data} or {code, message, data: null}, "
                "except a session export's download (its errors are envelopes)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop = {key: value for key, value in prop.items() if key != "title"}
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    parameters.extend(endpoint.header_parameters)
    content = dict(endpoint.alternative_content)
    if endpoint.response is not None:
        success = {
            "type": "object",
            "required": ["code", "data"],
            "properties": {
                "code": {"const": 200},
                "data": refs[(endpoint.response, "serialization")],
            },
        }
        content = {"application/json": {"schema": success}, **content}
    responses: dict[str, Any] = {"200": {"description": "success", "content": content}}
    error_ref = refs[(ErrorEnvelope, "serialization")]
    for status in endpoint.errors:
        responses[str(status)] = {
            "description": _ERROR_MEANING[status],
            "content": {"application/json": {"schema": error_ref}},
        }
    # Any authenticated request may be over its caller's rate limits (rate_limits).
    responses["429"] = {
        "description": "over a rate limit: retry after Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": error_ref}},
    }
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "parameters": parameters,
        "responses": responses,
    }
    if endpoint.admin_only:
        operation["description"] = "Admins only (403 for other users)."
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
        }
    return operation


def _describe_server_rules(
    schemas: dict[str, Any], *, limits: Limits, providers: Collection[str]
) -> None:
    """Add what the service checks and the models cannot say: so that every request the
    document calls valid is accepted, and every one it calls invalid is refused."""
    message = schemas["SendMessageBody"]["properties"]["message"]
    message["maxLength"] = limits.max_message_chars

    body = schemas["UpdateModelConfigBody"]
    fields = body["properties"]
    names = "|".join(re.escape(name) for name in sorted(providers))
    fields["provider"]["pattern"] = rf"^[{BLANK}]*({names})[{BLANK}]*{END}"
    fields["is_default"] = {"enum": [True], **_described(fields["is_default"])}
    fields["parameters"] = {"$ref": _REF.format(model="ConfigParameters")}
    for schema in fields.values():
        # pydantic's stand-in for "left out", which keeps the stored value: no default.
        schema.pop("default", None)
    # A body that changes nothing is refused.
    body["anyOf"] = [{"required": [name]} for name in UpdateModelConfigBody.model_fields]
    fields["base_url"]["pattern"] = BASE_URL_PATTERN
    schemas.update(parameter_schemas(_REF))


def _described(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": schema["description"]} if "description" in schema else {}
