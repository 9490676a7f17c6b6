"""GraphiQL at /graphql in a real browser: every file from this server (no CDN), no console
error or CSP violation, and it runs queries over HTTP and subscriptions over WebSocket."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from playwright.sync_api import Page, Request, expect

from tests.console.browsing import Console, OpenPage, screenshot, sign_in

ME = "{ me { name } }"
STREAM = """subscription($s: ID!) {
  sendMessageStream(input: {sessionId: $s, content: "graphiql says hi"}) {
    ... on Message { type content }
    ... on MessageDelta { delta }
  }
}"""


def watch_requests(page: Page) -> list[str]:
    """Every URL the page asks for, from now on."""
    urls: list[str] = []

    def on_request(request: Request) -> None:
        urls.append(request.url)

    page.on("request", on_request)
    return urls


def assert_same_origin(urls: list[str], base_url: str) -> None:
    # The WebSocket of subscriptions is no `request` event; data: fonts are no request.
    elsewhere = [url for url in urls if not url.startswith(base_url + "/")]
    assert not elsewhere, f"requests to another origin: {elsewhere}"


def graphiql_url(base_url: str, **parameters: str) -> str:
    """The page with its URL parameters (q, variables, headers), as a shared link has them."""
    return f"{base_url}/graphql" + (f"?{urlencode(parameters)}" if parameters else "")


def run(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Execute query")).click()


def admin_name(console: Console) -> str:
    name: str = console.gql(console.admin_key, ME)["me"]["name"]
    return name


def test_graphiql_loads_from_this_server_only_and_runs_a_query(
    console: Console, open_page: OpenPage
) -> None:
    page = open_page()
    urls = watch_requests(page)
    headers = json.dumps({"Authorization": f"Bearer {console.admin_key}"})

    page.goto(graphiql_url(console.url, q=ME, headers=headers))
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    expect(page.locator(".graphiql-query-editor")).to_contain_text("me")
    run(page)

    result = page.locator(".graphiql-response")
    expect(result).to_contain_text(f'"name": "{admin_name(console)}"')
    screenshot(page, "graphiql-desktop")
    assert_same_origin(urls, console.url)
    assert any(url.endswith("/console/vendor/graphiql/graphiql.min.js") for url in urls), urls
    # The key is taken from the address, which then forgets it; GraphiQL keeps what it
    # keeps (its history holds the headers) in the tab's sessionStorage, not localStorage.
    assert "headers=" not in page.url and console.admin_key not in page.url
    assert "q=" in page.url
    kept = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")
    assert console.admin_key not in kept
    in_tab = page.evaluate("() => JSON.stringify(Object.entries(sessionStorage))")
    assert "graphiql:" in in_tab


def test_signed_in_to_the_console_graphiql_has_the_credential_already(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("graphiql-bea")
    page = open_page()
    sign_in(page, console.url, key)

    page.get_by_role("link", name="GraphiQL").click()
    expect(page).to_have_url(re.compile(r"/graphql$"))
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    run(page)  # the default tab: { me { name role } }

    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"name": "graphiql-bea"')
    expect(result).to_contain_text('"role": "USER"')


def test_a_subscription_streams_over_the_websocket(console: Console, open_page: OpenPage) -> None:
    key = console.user("graphiql-cem")
    session_id = console.gql(key, "mutation { createSession { id } }")["createSession"]["id"]
    page = open_page()
    urls = watch_requests(page)

    page.goto(
        graphiql_url(
            console.url,
            q=STREAM,
            variables=json.dumps({"s": session_id}),
            headers=json.dumps({"Authorization": f"Bearer {key}"}),
        )
    )
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
    run(page)

    # The stream ends with the stored reply.
    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"content": "Echo: graphiql says hi"')
    expect(result).to_contain_text('"type": "AI"')
    assert_same_origin(urls, console.url)
    history = console.gql(
        key,
        "query($s: ID!) { session(id: $s) { messages(last: 5) { edges { node { content } } } } }",
        {"s": session_id},
    )
    contents = [e["node"]["content"] for e in history["session"]["messages"]["edges"]]
    assert contents == ["graphiql says hi", "Echo: graphiql says hi"]
