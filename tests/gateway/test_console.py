"""The web console as the server delivers it (no browser: tests/console/ drives one): its
pages and their strict CSP, every file they load, the settings the pages read, caching,
no way out of the static folder, CONSOLE_ENABLED, the vendored files' licences, and the
line `serve` prints to say where the console is."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from gateway import console
from gateway.app import create_app
from gateway.cli.server import browser_url
from gateway.graphql import GRAPHIQL_PAGE
from gateway.settings import load_settings
from tests.gateway.identity_provider import AUDIENCE, ISSUER, Signer
from tests.servers import CHAT_GATEWAY, StartServer, child_env, free_port, scratch_database

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PAGES = ("/", "/admin")
VENDOR = console.STATIC / "vendor"
# Every vendored file, and the package (VERSIONS.txt) it comes from.
VENDORED = {
    "graphql-ws.min.js": "graphql-ws",
    "markdown-it.min.js": "markdown-it",
    "graphiql/react.production.min.js": "react",
    "graphiql/react-dom.production.min.js": "react-dom",
    "graphiql/graphiql.min.js": "graphiql",
    "graphiql/graphiql.min.css": "graphiql",
    "graphiql/plugin-explorer.umd.js": "@graphiql/plugin-explorer",
    "graphiql/plugin-explorer.css": "@graphiql/plugin-explorer",
}
CONTENT_TYPES = {
    "": ("text/html",),  # a link to another page
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
    ".json": ("application/json",),
    ".txt": ("text/plain",),
}
# A module's imports: `import ... from "x"`, `export ... from "x"`, `import "x"`, `import("x")`.
IMPORTS = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']""")
CSS_URLS = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")
# XML namespaces name no place to load anything from.
NAMESPACES = ("http://www.w3.org/",)

OpenApp = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def open_app(database_url: str) -> OpenApp:
    """open_app(console_enabled=False, ...): a client of an app built with those settings.
    Its lifespan does not run: the console's routes need no database."""

    @asynccontextmanager
    async def open_one(**values: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(database_url=database_url, _env_file=None, **values)
        transport = httpx.ASGITransport(app=create_app(settings), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            yield http

    return open_one


class _References(HTMLParser):
    """What a page loads or links to: src and href attributes, and any inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name in ("src", "href"):
            if named.get(name):
                self.urls.append(named[name] or "")
        if tag in ("script", "style") and not named.get("src"):
            self._in_code = True
        self.inline.extend(f"{name}=" for name, _ in attrs if name.startswith("on"))
        if "style" in named:
            self.inline.append("style=")

    def handle_data(self, data: str) -> None:
        if self._in_code and data.strip():
            self.inline.append(data.strip()[:80])

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False


def references(html: str) -> _References:
    found = _References()
    found.feed(html)
    found.close()
    return found


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def assert_content_type(response: httpx.Response, path: str) -> None:
    suffix = Path(path).suffix
    content_type = response.headers["content-type"]
    assert content_type.startswith(CONTENT_TYPES[suffix]), (path, content_type)


async def every_file(client: httpx.AsyncClient, page_url: str, html: str) -> dict[str, str]:
    """Every file the page loads, and what those load (module imports, stylesheet urls):
    {url: content type}. Each must answer 200 with the right content type."""
    pending = [urljoin(page_url, url) for url in references(html).urls if not url.startswith("#")]
    seen: dict[str, str] = {}
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        assert url.startswith("http://gateway.test/"), f"{page_url} loads {url} from elsewhere"
        response = await client.get(url)
        assert response.status_code == 200, (page_url, url)
        path = httpx.URL(url).path
        assert_content_type(response, path)
        seen[url] = response.headers["content-type"]
        if path.endswith(".js") and "/vendor/" not in path:
            pending += [urljoin(url, found) for found in IMPORTS.findall(response.text)]
        elif path.endswith(".css") and "/vendor/" not in path:
            pending += [
                urljoin(url, found)
                for found in CSS_URLS.findall(response.text)
                if not found.startswith("data:")
            ]
    return seen


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_is_html_under_the_consoles_strict_csp(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Accept": BROWSER_ACCEPT})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    values = {value for values in policy.values() for value in values}
    assert not {v for v in values if v.startswith("'unsafe-") or "://" in v}, values
    # The CSP would refuse inline code; the page has none to refuse.
    assert references(response.text).inline == []


@pytest.mark.parametrize("path", PAGES)
async def test_every_file_a_page_loads_is_served_with_its_type(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    files = await every_file(client, str(response.url), response.text)

    assert any(url.endswith(".js") for url in files) and any(url.endswith(".css") for url in files)


async def test_every_file_the_graphiql_page_loads_is_served_with_its_type(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200

    files = await every_file(client, str(response.url), response.text)

    assert "http://gateway.test/console/vendor/graphiql/graphiql.min.js" in files
    assert "http://gateway.test/console/graphiql.js" in files


async def test_the_settings_the_pages_read(open_app: OpenApp) -> None:
    signer = Signer.ec("console")
    jwt = {"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "jwt_public_key": signer.public_pem()}
    cases = [
        ({}, {"jwtSignIn": False, "graphiql": True}),
        ({"graphql_ide": False}, {"jwtSignIn": False, "graphiql": False}),
        (jwt, {"jwtSignIn": True, "graphiql": True}),
        ({"environment": "production"}, {"jwtSignIn": False, "graphiql": False}),
    ]
    for values, expected in cases:
        async with open_app(**values) as client:
            response = await client.get("/console/settings.json")
        assert response.status_code == 200, values
        assert response.json() == expected, values
        assert response.headers["cache-control"] == "no-cache"


async def test_files_are_revalidated_by_their_etag(client: httpx.AsyncClient) -> None:
    for path in ("/console/console.css", "/console/js/api.js", "/console/vendor/VERSIONS.txt"):
        first = await client.get(path)
        assert first.status_code == 200, path
        assert first.headers["cache-control"] == "no-cache", path
        etag = first.headers["etag"]

        again = await client.get(path, headers={"If-None-Match": etag})

        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag


async def raw_get(app: Starlette, raw_path: bytes) -> int:
    """GET exactly this path (an HTTP client would resolve its dot segments): the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gateway.test")],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    sent: list[Message] = []
    requested = False
    answered = asyncio.Event()

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()  # the client stays until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/console/../__init__.py",
        b"/console/../../settings.py",
        b"/console/js/../../__init__.py",
        b"/console/%2e%2e/__init__.py",
        b"/console/..%2f__init__.py",
        b"/console/%2e%2e%2f%2e%2e%2fsettings.py",
        b"/console/..%5c__init__.py",
        b"/console//etc/passwd",
        b"/console/%2fetc%2fpasswd",
    ],
)
async def test_no_path_leads_out_of_the_static_folder(app: Starlette, raw_path: bytes) -> None:
    assert await raw_get(app, raw_path) == 404
    assert await raw_get(app, b"/console/console.css") == 200  # the way in works


async def test_console_disabled_serves_no_page_but_graphiqls_files(open_app: OpenApp) -> None:
    async with open_app(console_enabled=False) as client:
        pages = [await client.get(path, headers={"Accept": BROWSER_ACCEPT}) for path in PAGES]
        settings = await client.get("/console/settings.json")
        graphiql = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
        graphiql_files = await every_file(client, str(graphiql.url), graphiql.text)

    assert [page.status_code for page in pages] == [404, 404]
    assert settings.status_code == 404
    assert graphiql.status_code == 200 and graphiql_files


async def test_with_neither_the_console_nor_graphiql_nothing_is_served(
    open_app: OpenApp,
) -> None:
    async with open_app(console_enabled=False, graphql_ide=False) as client:
        answers = [
            await client.get("/", headers={"Accept": BROWSER_ACCEPT}),
            await client.get("/console/console.css"),
            await client.get("/console/graphiql.js"),
            await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT}),
        ]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 404]


def vendored_packages() -> dict[str, str]:
    """VERSIONS.txt: {package: version}."""
    lines = (VENDOR / "VERSIONS.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.rsplit("@", 1) for line in lines if line.strip())


def licensed_packages() -> set[str]:
    """THIRD_PARTY_LICENSES.txt: the packages whose licence it holds, as name@version."""
    licences = (VENDOR / "THIRD_PARTY_LICENSES.txt").read_text(encoding="utf-8")
    assert re.search(r"MIT License|Permission is hereby granted", licences)
    return set(re.findall(r"^==== (\S+) ====$", licences, re.MULTILINE))


def test_every_vendored_file_comes_from_a_listed_package() -> None:
    vendored = {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name not in ("VERSIONS.txt", "THIRD_PARTY_LICENSES.txt")
    }
    versions = vendored_packages()
    licensed = licensed_packages()

    assert vendored == set(VENDORED), "a vendored file this test does not know of, or one gone"
    assert set(VENDORED.values()) <= set(versions)
    for package in ("graphiql", "react", "react-dom", "graphql-ws", "markdown-it"):
        assert f"{package}@{versions[package]}" in licensed, f"no licence for {package}"


def test_every_listed_package_has_its_licence() -> None:
    licensed = licensed_packages()
    missing = [f"{p}@{v}" for p, v in vendored_packages().items() if f"{p}@{v}" not in licensed]
    assert not missing, f"no licence for {missing}"


def test_no_page_or_console_file_loads_anything_from_another_host() -> None:
    own = [
        GRAPHIQL_PAGE,
        *console.PAGES.glob("*.html"),
        *(
            path
            for path in console.STATIC.rglob("*")
            if path.suffix in (".js", ".css", ".html", ".svg") and VENDOR not in path.parents
        ),
    ]
    assert len(own) > 5
    for path in own:
        text = path.read_text(encoding="utf-8")
        found = [
            url
            for url in re.findall(r"https?://[^\s\"'`)]*", text)
            if not url.startswith(NAMESPACES)
        ]
        assert not found, f"{path} names {found}"


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """Ask for it before `servers`: the servers stop before their database is dropped."""
    with scratch_database(tmp_path) as url:
        yield url


def test_serve_says_where_the_console_is(fresh_database: str, servers: StartServer) -> None:
    port = free_port()
    env = child_env(DATABASE_URL=fresh_database, HOST="0.0.0.0", PORT=str(port))
    server = servers(command=[CHAT_GATEWAY, "serve"], port=port, env=env)
    server.wait_ready()

    url = f"http://127.0.0.1:{port}/"
    lines = server.output().splitlines()
    assert f"web console: {url} (sign in with the api_key above)" in lines, lines
    assert [n for n, line in enumerate(lines) if line.startswith("  api_key: ")] < [
        n for n, line in enumerate(lines) if line.startswith("web console: ")
    ]
    page = httpx.get(url, headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and "<title>" in page.text


def test_serve_names_no_console_when_it_is_off(fresh_database: str, servers: StartServer) -> None:
    port = free_port()
    env = child_env(
        DATABASE_URL=fresh_database,
        PORT=str(port),
        CONSOLE_ENABLED="false",
        BOOTSTRAP_ADMIN="false",
    )
    server = servers(command=[CHAT_GATEWAY, "serve"], port=port, env=env)
    server.wait_ready()

    assert "serving on" in server.output()
    assert "web console" not in server.output()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("gateway.internal", "http://gateway.internal:8000"),
    ],
)
def test_the_consoles_address_for_a_browser(host: str, url: str) -> None:
    assert browser_url(host, 8000) == url
