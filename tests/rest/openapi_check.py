"""Checks every /api/v1 response against the schema the OpenAPI document declares for it.

`checked_client` is the REST tests' HTTP client: a response hook runs `ApiDocument.check`
on each response, so no test can receive an undocumented status or a body off its schema.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.types import ASGIApp

PREFIX = "/api/v1"
OPENAPI_PATH = PREFIX + "/openapi.json"
BASE_URL = "http://gateway.test"
_DOCUMENT_URI = "urn:ai-chat-gateway:openapi"
_ERROR_ENVELOPE = "#/components/schemas/ErrorEnvelope"
JSON = "application/json"


def _pointer(*parts: str) -> str:
    """A URI fragment holding the JSON pointer to `parts` (RFC 6901 escaping)."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in parts)
    return "#" + quote("/" + "/".join(escaped), safe="/~")


class ApiDocument:
    """An OpenAPI 3.1 document, able to validate a response of the operation it describes."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
        self._templates = [
            (re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in document["paths"]
        ]

    def template_of(self, path: str) -> str | None:
        """The documented path template `path` falls under, if any."""
        return next((template for regex, template in self._templates if regex.match(path)), None)

    def validate(self, instance: Any, fragment: str) -> None:
        """Validate `instance` against the schema at `fragment` of the document."""
        validator = Draft202012Validator({"$ref": _DOCUMENT_URI + fragment}, registry=self.registry)
        validator.validate(instance)

    def check(self, response: httpx.Response) -> None:
        """Raise AssertionError (or ValidationError) unless the response is as documented."""
        request = response.request
        path, method = request.url.path, request.method.lower()
        if not path.startswith(PREFIX + "/") or path == OPENAPI_PATH or method == "head":
            return
        status = response.status_code
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        template = self.template_of(path)
        operation = self.document["paths"].get(template, {}).get(method) if template else None
        if operation is None:
            # Not a documented operation: only the 404/405 error envelope may come back.
            assert status in (404, 405), f"{method.upper()} {path} answered {status}"
            assert media_type == JSON, response.headers
            self.validate(self._envelope(response), _ERROR_ENVELOPE)
            return
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method.upper()} {template} answered {status}, which the document does not "
            f"declare (declared: {sorted(responses)}): {response.text}"
        )
        content = responses[str(status)]["content"]
        assert media_type in content, f"{media_type!r} is not documented: {sorted(content)}"
        if media_type != JSON:
            return
        assert template is not None
        # A success is what its schema says: an envelope's requires {code: 200, data}; a
        # download (the JSON export) is the document itself.
        self.validate(
            response.json() if status == 200 else self._envelope(response),
            _pointer(
                "paths", template, method, "responses", str(status), "content", JSON, "schema"
            ),
        )

    @staticmethod
    def _envelope(response: httpx.Response) -> Any:
        body = response.json()
        assert isinstance(body, dict) and body.get("code") == response.status_code, body
        return body


async def fetch_document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(OPENAPI_PATH)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


@asynccontextmanager
async def checked_client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over `app` that checks every response it receives against the document."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as plain:
        api = ApiDocument(await fetch_document(plain))

    async def check(response: httpx.Response) -> None:
        await response.aread()
        api.check(response)

    hooks = {"response": [check]}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, event_hooks=hooks) as http:
        yield http
