"""Unknown routes (404), wrong methods (405) and unexpected failures (500)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from db.ports import ChatTurn, ModelReply, ModelSpec, ReplyDelta
from db.services import logs as audit
from gateway.providers import EchoProvider, ProviderRegistry
from tests.factories import Account, create_session, make_config, send
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url
from tests.rest.openapi_check import fetch_document

LEAK = "SELECT key_digest FROM api_keys WHERE prefix = 'cgw_leaked_secret'"
INTERNALS = ("Traceback", "RuntimeError", "SELECT", "cgw_leaked_secret", 'File "')


class BrokenClient:
    async def complete(self, turns: Sequence[ChatTurn]) -> ModelReply:
        raise RuntimeError(LEAK)

    async def stream(self, turns: Sequence[ChatTurn]) -> AsyncIterator[ReplyDelta | ModelReply]:
        raise RuntimeError(LEAK)
        yield ReplyDelta("")  # pragma: no cover

    async def aclose(self) -> None:
        return None


class BrokenProvider:
    """A provider with a bug: every call it gets raises an exception nobody planned for."""

    name = "broken"

    def validate(self, spec: ModelSpec) -> None:
        raise RuntimeError(LEAK)

    def build(self, spec: ModelSpec) -> BrokenClient:
        return BrokenClient()


@pytest.fixture
def registry(flaky: FlakyProvider) -> ProviderRegistry:
    return ProviderRegistry([EchoProvider(), flaky, BrokenProvider()])


@pytest.mark.parametrize(
    "path",
    # /api/v1/sessions/x is a route (PATCH, DELETE): GET and POST of it are 405 now.
    # (`/` is the web console's chat page.)
    [
        "/api/v1/nope",
        "/api/v1/sessions/x/y",
        "/api/v1/model-configs/x/y",
        "/api/v2/sessions",
        "/nope",
    ],
)
async def test_unknown_route_is_a_404_envelope(
    client: httpx.AsyncClient, admin: Account, path: str
) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, path, headers=admin.headers)
        assert refused(response, 404) == "route not found"


async def test_wrong_method_is_a_405_envelope_naming_every_allowed_method(
    client: httpx.AsyncClient,
) -> None:
    document = await fetch_document(client)
    for template, operations in document["paths"].items():
        allowed = {method.upper() for method in operations}
        allowed |= {"HEAD"} if "GET" in allowed else set()
        path = template.format(session_id="s", config_id="c", message_id="m")
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - allowed:
            response = await client.request(method, path)
            assert refused(response, 405) == "method not allowed"
            named = {part.strip() for part in response.headers["Allow"].split(",")}
            assert named == allowed, (method, template)


@pytest.mark.internal_errors
async def test_unexpected_exception_is_a_bare_500_and_logged(
    client: httpx.AsyncClient, admin: Account
) -> None:
    config = await make_config(model_name="victim")
    body = {"provider": "broken"}
    response = await client.put(
        url(f"/model-configs/{config.id}"), json=body, headers=admin.headers
    )
    message = refused(response, 500)
    assert not [word for word in INTERNALS if word in response.text]
    found = re.fullmatch(r"internal server error \(reference ([0-9a-f]{32})\)", message)
    assert found, message
    assert found.group(1) == response.headers["x-request-id"]  # the reference is the request id
    await audit.flush()  # the entry is written in the background: the answer never waits
    logs = await client.get(url("/logs"), params={"level": "error"}, headers=admin.headers)
    [entry] = [e for e in ok(logs)["logs"] if e["event"] == "internal.error"]
    assert entry["details"]["reference"] == found.group(1)
    assert entry["details"]["exception"] == "RuntimeError"
    assert f"PUT /api/v1/model-configs/{config.id}" in entry["message"]
    assert "cgw_leaked_secret" not in logs.text
    configs = ok(await client.get(url("/model-configs"), headers=admin.headers))["models"]
    [kept] = [model for model in configs if model["config_id"] == str(config.id)]
    assert (kept["provider"], kept["version"]) == ("echo", 1)


@pytest.mark.internal_errors
async def test_provider_bug_during_a_reply_is_a_model_failure(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    config = await make_config(provider="broken", model_name="buggy")
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    response = await send(client, alice, session_id, "hi")
    assert refused(response, 500) == "the AI model failed to reply"
    assert not [word for word in INTERNALS if word in response.text]
    logs: dict[str, Any] = ok(await client.get(url("/logs"), headers=admin.headers))
    [entry] = [e for e in logs["logs"] if e["event"] == "model.failed"]
    assert entry["details"]["error"] == "RuntimeError"
    assert "cgw_leaked_secret" not in str(logs)
