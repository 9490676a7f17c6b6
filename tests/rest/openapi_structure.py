"""The parts of the OpenAPI 3.1 specification the gateway's document uses, as a JSON Schema.

openapi-spec-validator is not among the project's test dependencies, so this checks the
structure the specification requires of each object the document holds: a required field
missing, misspelt or of the wrong type fails.
"""

from __future__ import annotations

from typing import Any

_METHODS = "^(get|put|post|delete|options|head|patch|trace)$"
_EXTENSION = "^x-"

OPENAPI_31_STRUCTURE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["openapi", "info"],
    "anyOf": [{"required": ["paths"]}, {"required": ["components"]}, {"required": ["webhooks"]}],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+(-.+)?$"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {
                "title": {"type": "string"},
                "version": {"type": "string"},
                "description": {"type": "string"},
            },
        },
        "jsonSchemaDialect": {"type": "string"},
        "paths": {
            "type": "object",
            "patternProperties": {"^/": {"$ref": "#/$defs/path-item"}, _EXTENSION: {}},
            "additionalProperties": False,
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {
                    "type": "object",
                    "propertyNames": {"pattern": r"^[a-zA-Z0-9._-]+$"},
                    "additionalProperties": {"type": ["object", "boolean"]},
                },
                "securitySchemes": {
                    "type": "object",
                    "additionalProperties": {"$ref": "#/$defs/security-scheme"},
                },
            },
        },
        "security": {"$ref": "#/$defs/security"},
    },
    "patternProperties": {_EXTENSION: {}},
    "unevaluatedProperties": False,
    "$defs": {
        "path-item": {
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "description": {"type": "string"},
                "parameters": {"type": "array", "items": {"$ref": "#/$defs/parameter"}},
            },
            "patternProperties": {_METHODS: {"$ref": "#/$defs/operation"}, _EXTENSION: {}},
            "unevaluatedProperties": False,
        },
        "operation": {
            "type": "object",
            "required": ["responses"],
            "properties": {
                "summary": {"type": "string"},
                "description": {"type": "string"},
                "operationId": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "parameters": {"type": "array", "items": {"$ref": "#/$defs/parameter"}},
                "requestBody": {
                    "type": "object",
                    "required": ["content"],
                    "properties": {
                        "required": {"type": "boolean"},
                        "content": {"$ref": "#/$defs/content"},
                    },
                },
                "responses": {
                    "type": "object",
                    "minProperties": 1,
                    "patternProperties": {
                        "^[1-5](?:[0-9]{2}|XX)$": {"$ref": "#/$defs/response"},
                        "^default$": {"$ref": "#/$defs/response"},
                        _EXTENSION: {},
                    },
                    "additionalProperties": False,
                },
                "security": {"$ref": "#/$defs/security"},
                "deprecated": {"type": "boolean"},
            },
            "patternProperties": {_EXTENSION: {}},
            "unevaluatedProperties": False,
        },
        "parameter": {
            "type": "object",
            "required": ["name", "in"],
            "oneOf": [{"required": ["schema"]}, {"required": ["content"]}],
            "properties": {
                "name": {"type": "string"},
                "in": {"enum": ["query", "header", "path", "cookie"]},
                "required": {"type": "boolean"},
                "description": {"type": "string"},
                "schema": {"type": ["object", "boolean"]},
                "content": {"$ref": "#/$defs/content"},
            },
            "if": {"properties": {"in": {"const": "path"}}},
            "then": {"required": ["required"], "properties": {"required": {"const": True}}},
        },
        "response": {
            "type": "object",
            "required": ["description"],
            "properties": {
                "description": {"type": "string"},
                "content": {"$ref": "#/$defs/content"},
                "headers": {"type": "object"},
            },
        },
        "content": {
            "type": "object",
            "propertyNames": {"pattern": r"^[\w.+-]+/[\w.+*-]+$"},
            "additionalProperties": {
                "type": "object",
                "properties": {"schema": {"type": ["object", "boolean"]}},
            },
        },
        "security": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "array"}},
        },
        "security-scheme": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"]}
            },
            "if": {"properties": {"type": {"const": "http"}}},
            "then": {"required": ["scheme"], "properties": {"scheme": {"type": "string"}}},
        },
    },
}
