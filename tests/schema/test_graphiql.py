"""GraphiQL on GET /graphql: the page, its default tab and headers template (in its script,
/console/graphiql.js), and doing what the page does with them (POST to its own URL,
subscribe on the ws:// twin of that URL)."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from tests.factories import Account
from tests.schema.conftest import OpenVariant
from tests.schema.gql import new_session
from tests.schema.ws import TransportWS
from tests.servers import LiveServer

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# What GraphiQL's default (multipart) fetcher sends with each request.
FETCHER_ACCEPT = "application/json, multipart/mixed"
PLACEHOLDER = "<paste your API key here>"
STREAM = """subscription($s: ID!) {
  sendMessageStream(input: {sessionId: $s, content: "hi"}) { __typename } }"""


async def open_page(client: httpx.AsyncClient, url: str = "/graphql") -> str:
    """The page's own script, which sets GraphiQL up (the page itself holds no script)."""
    response = await client.get(url, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", response.text)
    assert sources and sources[-1] == "/console/graphiql.js", sources
    script = await client.get(urljoin(str(response.url), sources[-1]))
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    return script.text


def default_query(page: str) -> str:
    found = re.search(r"const EXAMPLE_QUERY = `(.*?)`;", page, re.DOTALL)
    assert found, "the page has no default query"
    return found.group(1).replace("\\`", "`")


def headers_template(page: str) -> dict[str, str]:
    found = re.search(r"JSON\.stringify\(\s*\{\s*Authorization:\s*(\"[^\"]*\")", page)
    assert found, "the page has no default headers"
    return {"Authorization": json.loads(found.group(1))}


def pasted(template: dict[str, str], key: str) -> dict[str, str]:
    """What a developer does: put the key where the template says."""
    assert PLACEHOLDER in template["Authorization"]
    return {"Authorization": template["Authorization"].replace(PLACEHOLDER, key)}


def fetcher_url(page_url: str) -> str:
    """`window.location.href.split("?")[0]`, as the page computes it."""
    return page_url.split("?")[0]


async def test_the_page_and_its_default_tab(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert "<title>ai-chat-gateway GraphiQL</title>" in response.text
    page = await open_page(client)

    query = default_query(page)
    assert re.search(r"\{\s*me\s*\{\s*name\b", query), query
    assert headers_template(page) == {"Authorization": f"Bearer {PLACEHOLDER}"}
    # The fetcher posts to the page's own URL and subscribes on its ws:// twin.
    assert 'const fetchURL = window.location.href.split("?")[0];' in page
    assert re.search(r"createFetcher\(\{\s*url: fetchURL,", page)
    assert "const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);" in page
    # The template, unless the tab is signed in to the console (then its credential).
    assert "defaultHeaders: consoleHeaders() || DEFAULT_HEADERS" in page
    assert "isHeadersEditorEnabled: true" in page


async def test_running_the_default_tab_with_a_pasted_key(
    client: httpx.AsyncClient, alice: Account
) -> None:
    page_url = "http://gateway.test/graphql?query-editor=open"
    page = await open_page(client, page_url)
    headers = pasted(headers_template(page), alice.key)

    response = await client.post(
        fetcher_url(page_url),
        json={"query": default_query(page), "variables": None, "operationName": None},
        headers={**headers, "Accept": FETCHER_ACCEPT, "Content-Type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"name": "alice", "role": "USER"}}}


async def test_without_the_key_the_default_tab_says_why(client: httpx.AsyncClient) -> None:
    page = await open_page(client)

    response = await client.post(
        "/graphql", json={"query": default_query(page)}, headers=headers_template(page)
    )

    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_subscriptions_from_the_page_with_the_pasted_key(
    client: httpx.AsyncClient, live: LiveServer, alice: Account
) -> None:
    page_url = f"{live.http_url}/graphql"
    async with httpx.AsyncClient() as browser:
        page = await open_page(browser, page_url)
    scheme, netloc, path, _, _ = urlsplit(fetcher_url(page_url))
    subscription_url = urlunsplit(("ws" if scheme == "http" else "wss", netloc, path, "", ""))
    session_id = await new_session(client, alice)
    # GraphiQL's fetcher sends the headers pane as the connection_init payload
    # (@graphiql/toolkit getWsFetcher: {...wsConnectionParams, ...headers}).
    payload = pasted(headers_template(page), alice.key)

    async with TransportWS.connect(subscription_url, init_payload=payload) as socket:
        operation = await socket.subscribe(STREAM, {"s": session_id})
        first = await socket.next_result(operation)

    assert first == {"data": {"sendMessageStream": {"__typename": "Message"}}}


async def test_the_page_can_be_switched_off(variant: OpenVariant, alice: Account) -> None:
    async with variant(GRAPHQL_IDE="false") as production:
        response = await production.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == 404
        assert "GraphiQL" not in response.text
        answer = await production.post(
            "/graphql", json={"query": "{ me { name } }"}, headers=alice.headers
        )
        assert answer.json() == {"data": {"me": {"name": "alice"}}}
