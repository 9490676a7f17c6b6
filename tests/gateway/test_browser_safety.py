"""What browsers are told: security headers on every answer, a CSP on the GraphiQL page that
allows this origin's files only, CORS from the CORS_ORIGINS allow-list, and WebSocket
origins checked against the same list."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from gateway.settings import Settings, load_settings
from tests.factories import Account
from tests.schema.ws import TransportWS
from tests.servers import live_server

ALLOWED = "https://app.example"
OTHER = "https://evil.example"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        cors_origins=ALLOWED,
        shutdown_grace_seconds=5,
        max_body_bytes=2048,
        _env_file=None,
    )


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, response.status_code


async def test_every_answer_carries_the_security_headers(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answers = [
        await client.get("/api/v1/model-configs", headers=alice.headers),  # REST
        await client.get("/api/v1/model-configs"),  # REST 401
        await client.get("/api/v1/no-such-route"),  # 404
        # A body over MAX_BODY_BYTES: REST's 400 envelope.
        await client.post("/api/v1/sessions", content=b"x" * 4096, headers=alice.headers),
        await client.post("/graphql", json={"query": "{ me { name } }"}, headers=alice.headers),
        await client.post("/graphql", content=b"{not json", headers=alice.headers),  # 400
        await client.get("/healthz"),
    ]

    assert [a.status_code for a in answers] == [200, 401, 404, 400, 200, 400, 200]
    for answer in answers:
        assert_secured(answer)
        # JSON answers may load nothing, should a browser ever render one.
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


async def test_the_graphiql_page_loads_only_this_servers_files_under_a_strict_csp(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert_secured(response)
    page = response.text
    policy = _directives(response.headers["content-security-policy"])

    # Nothing inline, and every file from this origin (no CDN): a closed network serves it.
    assert len(re.findall(r"<script\b", page)) == len(re.findall(r"<script[^>]*\ssrc=", page))
    assert "<style" not in page and not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    loaded = re.findall(r"\s(?:src|href)=\"([^\"]+)\"", page)
    assert loaded and all(url.startswith("/console/") for url in loaded), loaded
    for url in loaded:
        assert (await client.get(url)).status_code == 200, url
    assert not re.search(r"https?://", page)

    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    # Its fetcher and subscriptions: this server ('self' covers its ws:// and wss://).
    assert policy["connect-src"] == ["'self'"]
    assert policy["font-src"] == ["'self'", "data:"]  # GraphiQL's stylesheet embeds its fonts
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    # No host, no scheme but data:, no hash, no 'unsafe-inline' nor 'unsafe-eval'.
    values = {value for values in policy.values() for value in values}
    assert values <= {"'self'", "'none'", "data:"}, values


def test_cors_origins_are_empty_by_default() -> None:
    assert load_settings(_env_file=None).cors_origins == []


async def test_a_cors_preflight_from_an_allowed_origin_is_answered_and_others_are_refused(
    client: httpx.AsyncClient,
) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }

    allowed = await client.options("/api/v1/sessions", headers=preflight(ALLOWED))
    other = await client.options("/api/v1/sessions", headers=preflight(OTHER))

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert_secured(allowed)
    assert_secured(other)


async def test_answers_name_only_an_allowed_origin(
    client: httpx.AsyncClient, alice: Account
) -> None:
    allowed = await client.get(
        "/api/v1/model-configs", headers={**alice.headers, "Origin": ALLOWED}
    )
    other = await client.get("/api/v1/model-configs", headers={**alice.headers, "Origin": OTHER})

    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    exposed = allowed.headers["access-control-expose-headers"].lower().split(", ")
    assert {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
        exposed
    )
    assert "access-control-allow-origin" not in other.headers
    # A GraphQL read too (on PostgreSQL a compiled one, which the lane leaves to CORS).
    read = {"query": "{ me { id } }"}
    allowed = await client.post("/graphql", json=read, headers={**alice.headers, "Origin": ALLOWED})
    other = await client.post("/graphql", json=read, headers={**alice.headers, "Origin": OTHER})
    assert allowed.json() == other.json() == {"data": {"me": {"id": alice.user_id}}}
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-origin" not in other.headers
    assert_secured(allowed)
    assert_secured(other)


async def test_websockets_from_another_origin_are_refused(app: Starlette, alice: Account) -> None:
    async with live_server(app) as live:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                live.ws_url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers={"Origin": OTHER},
            ):
                pass
        assert refused.value.response.status_code == 403

        # An allowed browser page, and a client that sends no Origin at all, connect.
        for headers in ({**alice.headers, "Origin": ALLOWED}, alice.headers):
            async with TransportWS.connect(live.ws_url, headers=headers) as socket:
                results = await socket.results(await socket.subscribe("{ me { name } }"))
            assert results[0]["data"] == {"me": {"name": "alice"}}
