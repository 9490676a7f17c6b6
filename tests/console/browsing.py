"""Browser tests of the web console: Debian's Chromium, headless, driven by Playwright for
Python, against a real `chat-gateway serve` on loopback with a database of its own.

- `console` (one per test module): the server, its first admin's key, and `gql()` / `user()`
  to prepare data through the API as any client would.
- `browser` (one per module): Chromium started from /usr/bin/chromium with the flags a
  closed network needs (Playwright's own browser download cannot be used here).
- `open_page(viewport=DESKTOP)`: a fresh browser context (its own sessionStorage) and
  page. Every console error, uncaught page error and CSP violation fails the test at its
  end, unless the test expected it (`page_problems.expect("status of 429")`).
- `sign_in(page, key)`, `screenshot(page, name)`, `assert_accessible(page)` (axe-core:
  no serious or critical violations).

Fixtures (import them in a conftest.py) and helpers.

Screenshots go to test-artifacts/console/<backend>/ (or $TEST_ARTIFACTS_DIR/console/...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from tests.conftest import BACKEND
from tests.servers import (
    CHAT_GATEWAY,
    INTERNAL_ERROR_SIGNS,
    REPO_ROOT,
    Server,
    child_env,
    free_port,
    scratch_database,
)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# A closed network: no background requests to Google's hosts, no component updates.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts")) / "console"
# Playwright waits up to this long for what a test expects to appear.
EXPECT_TIMEOUT_MS = 15_000
ADMIN_KEY = re.compile(r"api_key: (\S+)")


@dataclass
class Console:
    """A running `chat-gateway serve` and what tests prepare through its API."""

    server: Server
    admin_key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def gql(self, key: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        """Run a GraphQL operation as the key's owner; its `data`, or AssertionError."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def user(self, name: str, *, admin: bool = False) -> str:
        """A new user's first API key."""
        created = self.gql(
            self.admin_key,
            "mutation($name: String!, $role: Role!) "
            "{ createUser(name: $name, role: $role) { key } }",
            {"name": name, "role": "ADMIN" if admin else "USER"},
        )
        key: str = created["createUser"]["key"]
        return key

    def session(self, key: str, config_id: str | None = None) -> str:
        """A new session of the key's owner (on the default config unless given); its id."""
        created = self.gql(
            key,
            "mutation($input: CreateSessionInput) { createSession(input: $input) { id } }",
            {"input": {"modelConfigId": config_id}},
        )
        session_id: str = created["createSession"]["id"]
        return session_id

    def send(self, key: str, session_id: str, content: str) -> dict[str, Any]:
        """Send a message as another client would and wait for the reply: the
        `sendMessage` payload (userMessage {id}, aiMessage {id content metadata})."""
        sent = self.gql(
            key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
            "{ userMessage { id } aiMessage { id content metadata } } }",
            {"input": {"sessionId": session_id, "content": content}},
        )
        payload: dict[str, Any] = sent["sendMessage"]
        return payload

    def model_config(self, model_name: str, parameters: dict[str, Any]) -> str:
        """A new echo model config (e.g. {"chunk_delay_ms": 200} types slowly); its id."""
        created = self.gql(
            self.admin_key,
            "mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }",
            {
                "input": {
                    "modelName": model_name,
                    "modelVersion": "1",
                    "provider": "echo",
                    "parameters": parameters,
                }
            },
        )
        config_id: str = created["createModelConfig"]["id"]
        return config_id


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's "
            "package (`apt-get install chromium`, which scripts/ensure-services runs), "
            "or CHROMIUM_PATH pointing at a Chromium binary.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def console_settings() -> dict[str, str]:
    """The server's settings beyond the defaults; a test module overrides this fixture
    (e.g. {"REPLY_RATE_LIMIT_PER_MINUTE": "2"})."""
    return {}


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, console_settings: dict[str, str]
) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    with scratch_database(folder) as database_url:
        port = free_port()
        env = child_env(
            DATABASE_URL=database_url, BOOTSTRAP_ADMIN="true", WORKERS="1", **console_settings
        )
        server = Server(
            [CHAT_GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(port)],
            port=port,
            env=env,
            cwd=folder,
            logs=folder,
        )
        try:
            server.wait_ready()
            admin_key = ADMIN_KEY.search(server.wait_for_output("api_key: "))
            assert admin_key, server.output()
            yield Console(server=server, admin_key=admin_key.group(1))
        finally:
            server.stop()
        output = server.output()
        signs = [sign for sign in INTERNAL_ERROR_SIGNS if sign in output]
        assert not signs, f"server printed {signs}:\n{output}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    _require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()


@dataclass
class PageProblems:
    """Console errors, uncaught errors and CSP violations the pages of one test caused."""

    seen: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> None:
        """A console error containing `fragment` is part of this test (e.g. a 429 answer)."""
        self.expected.append(fragment)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "assert"):
                self.seen.append(f"console {message.type}: {message.text} ({message.location})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))

    def unexpected(self) -> list[str]:
        return [line for line in self.seen if not any(part in line for part in self.expected)]


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser, page_problems: PageProblems) -> Iterator[OpenPage]:
    """open_page(viewport=DESKTOP) -> a new page in a new context (its own storage)."""
    contexts = []

    def open_one(viewport: dict[str, int] | None = None) -> Page:
        # Numbers and dates as the tests write them (f"{n:,}", UTC), whatever the machine's.
        context = browser.new_context(
            viewport=viewport or DESKTOP, locale="en-US", timezone_id="UTC"
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page_problems.watch(page)
        return page

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    try:
        yield open_one
    finally:
        for context in contexts:
            context.close()
    problems = page_problems.unexpected()
    assert not problems, "the pages reported problems:\n" + "\n".join(problems)


def sign_in(page: Page, base_url: str, key: str, *, path: str = "/") -> None:
    """Open `path`, paste the key, sign in, and wait for the signed-in page."""
    page.goto(base_url + path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; its path."""
    folder = ARTIFACTS / BACKEND
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is now: no violation of serious or critical impact."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the driver: not page script
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not serious, "axe-core found serious violations:\n" + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in serious
    )
