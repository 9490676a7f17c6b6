"""The admin page at /admin: model configs (edit, validate, version history, rollback), usage,
logs, users and keys, in a real browser; and that a non-admin gets none of it.

The server is shared by the module: every test makes its own configs and users (unique
names) and never counts on what another test left.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, Request, expect

from tests.console.browsing import (
    DESKTOP,
    PHONE,
    Console,
    OpenPage,
    assert_accessible,
    screenshot,
    sign_in,
)
from tests.servers import free_port

TABS = {"configs": "Model configs", "usage": "Usage", "logs": "Logs", "users": "Users"}
CONFIG = "query($id: ID!) { modelConfig(id: $id) { version parameters } }"
SEND = (
    "mutation($input: SendMessageInput!) "
    "{ sendMessage(input: $input) { aiMessage { id content metadata } } }"
)
ME = "{ me { name role } }"


def free_port_url() -> str:
    """A model server's address where none listens."""
    return f"http://127.0.0.1:{free_port()}/v1"


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def open_admin(
    open_page: OpenPage,
    console: Console,
    key: str | None = None,
    *,
    tab: str = "configs",
    viewport: dict[str, int] | None = None,
) -> Page:
    """The admin page signed in as `key` (the first admin's by default), on `tab`."""
    page = open_page(viewport=viewport or DESKTOP)
    sign_in(page, console.url, key or console.admin_key, path=f"/admin#{tab}")
    expect(page.get_by_role("tab", name=TABS[tab])).to_have_attribute("aria-selected", "true")
    return page


def panel(page: Page, tab: str) -> Locator:
    return page.get_by_role("tabpanel", name=TABS[tab])


def send(console: Console, key: str, session_id: str, content: str) -> dict[str, Any]:
    reply: dict[str, Any] = console.send(key, session_id, content)["aiMessage"]
    return reply


def graphql_error_code(console: Console, key: str, query: str) -> str | int:
    """How the server refuses `key`: the HTTP status if not 200, else the error's code."""
    response = httpx.post(
        f"{console.url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    if response.status_code != 200:
        return response.status_code
    errors = response.json().get("errors") or [{}]
    code: str = errors[0].get("extensions", {}).get("code", "NONE")
    return code


def select_config(page: Page, name: str) -> Locator:
    """Open config `name` in the editor; its form."""
    panel(page, "configs").get_by_role("button", name=name, exact=True).click()
    form = page.get_by_role("form", name=f"Edit {name}")
    expect(form).to_be_visible()
    return form


def is_operation(name: str) -> Callable[[Request], bool]:
    """A request predicate: a GraphQL POST of the operation `name`."""
    return lambda request: (
        request.url.endswith("/graphql") and f" {name}(" in (request.post_data or "")
    )


def accept_next_dialog(page: Page) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


def test_an_admin_edits_a_model_config_and_the_next_reply_uses_it_then_rolls_it_back(
    console: Console, open_page: OpenPage
) -> None:
    name = unique("echo-admin-test")
    config_id = console.model_config(name, {"prefix": "Echo: "})
    page = open_admin(open_page, console)

    form = select_config(page, name)
    expect(form).to_contain_text("Version 1")
    form.get_by_label("Parameters (JSON)").fill('{"prefix": "Bot: "}')
    with page.expect_request(is_operation("AdminUpdateModelConfig")) as sent:
        form.get_by_role("button", name="Save").click()
    # Only what changed is sent.
    assert sent.value.post_data_json["variables"] == {
        "id": config_id,
        "input": {"parameters": {"prefix": "Bot: "}},
    }
    expect(form).to_contain_text("Version 2")
    expect(panel(page, "configs").get_by_role("status")).to_contain_text("now version 2")
    assert console.gql(console.admin_key, CONFIG, {"id": config_id})["modelConfig"] == {
        "version": 2,
        "parameters": {"prefix": "Bot: "},
    }

    session_id = console.session(console.admin_key, config_id)
    reply = send(console, console.admin_key, session_id, "hello there")
    assert reply["metadata"]["config_version"] == 2
    assert reply["content"].startswith("Bot: ")

    # The chat page shows the same: its last reply carries the config version it used
    # (data-config-version: the DOM contract of the chat page's conversation).
    page.goto(f"{console.url}/#/sessions/{session_id}")
    last_reply = page.get_by_role("list", name="Messages").get_by_role("article", name="Reply").last
    expect(last_reply).to_have_attribute("data-config-version", "2")

    page.goto(f"{console.url}/admin#configs")
    form = select_config(page, name)
    history = page.get_by_role("region", name="Version history")
    expect(history.get_by_role("row")).to_have_count(3)  # the header, versions 2 and 1
    accept_next_dialog(page)
    history.get_by_role("button", name="Roll back to version 1").click()
    expect(form).to_contain_text("Version 3")
    expect(form.get_by_label("Parameters (JSON)")).to_have_value(
        json.dumps({"prefix": "Echo: "}, indent=2)
    )
    expect(history.get_by_role("row")).to_have_count(4)

    reply = send(console, console.admin_key, session_id, "and again")
    assert reply["metadata"]["config_version"] == 3
    assert reply["content"].startswith("Echo: ")


def test_invalid_parameters_are_flagged_as_typed_and_a_refusal_shows_the_servers_message(
    console: Console, open_page: OpenPage
) -> None:
    name = unique("echo-invalid-json")
    config_id = console.model_config(name, {})
    page = open_admin(open_page, console)
    form = select_config(page, name)
    parameters = form.get_by_label("Parameters (JSON)")
    save = form.get_by_role("button", name="Save")

    parameters.fill('{"prefix": ')
    expect(parameters).to_have_attribute("aria-invalid", "true")
    expect(parameters).to_have_accessible_description(re.compile("Not valid JSON"))
    expect(form.get_by_text(re.compile("^Not valid JSON"))).to_be_visible()
    expect(save).to_be_disabled()

    parameters.fill("[1, 2]")
    expect(parameters).to_have_accessible_description(re.compile("Must be a JSON object"))
    expect(save).to_be_disabled()

    parameters.fill('{"prefix": "Fine: "}')
    expect(parameters).not_to_have_attribute("aria-invalid", "true")
    expect(save).to_be_enabled()

    provider = form.get_by_label("Provider", exact=True)
    provider.fill("no-such-provider")
    save.click()
    expect(page.get_by_role("alert")).to_contain_text("unknown provider 'no-such-provider'")
    expect(provider).to_have_attribute("aria-invalid", "true")
    expect(provider).to_be_focused()
    # Nothing was saved: not the provider, nor the parameters sent with it.
    assert console.gql(console.admin_key, CONFIG, {"id": config_id})["modelConfig"] == {
        "version": 1,
        "parameters": {},
    }


def test_an_admin_creates_a_model_config_in_the_page(console: Console, open_page: OpenPage) -> None:
    name = unique("echo-created")
    page = open_admin(open_page, console)
    panel(page, "configs").get_by_role("button", name="New model config").click()
    form = page.get_by_role("form", name="New model config")
    form.get_by_label("Model name").fill(name)
    form.get_by_label("Parameters (JSON)").fill('{"prefix": "New: "}')
    form.get_by_role("button", name="Create").click()

    edit = page.get_by_role("form", name=f"Edit {name}")
    expect(edit).to_contain_text("Version 1")
    expect(panel(page, "configs").get_by_role("button", name=name, exact=True)).to_be_visible()
    configs = console.gql(
        console.admin_key, "{ modelConfigs { modelName provider parameters isDefault } }"
    )["modelConfigs"]
    assert {
        "modelName": name,
        "provider": "echo",
        "parameters": {"prefix": "New: "},
        "isDefault": False,
    } in configs


def usage_rows_in_page(tab: Locator) -> list[list[str]]:
    rows = tab.get_by_role("table").locator("tbody tr")
    return [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()] for row in rows.all()
    ]


def test_usage_by_day_and_by_user_matches_the_api_with_a_chart(
    console: Console, open_page: OpenPage
) -> None:
    name = unique("usage-user")
    key = console.user(name)
    session_id = console.session(key)
    for words in ("one", "two words", "three words here"):
        send(console, key, session_id, words)

    # The page's range is the last seven UTC days by the browser's clock, today included;
    # the day may change while the page opens, so its "today" is one of these two.
    before = datetime.now(UTC).date()
    page = open_admin(open_page, console, tab="usage")
    after = datetime.now(UTC).date()
    tab = panel(page, "usage")
    expect(tab.get_by_role("checkbox", name="Day")).to_be_checked()
    expect(tab.get_by_role("checkbox", name="User")).to_be_checked()
    expect(tab.get_by_role("row").filter(has_text=name)).to_have_count(1)
    first_day = date.fromisoformat(tab.get_by_label("From").input_value())
    last_day = date.fromisoformat(tab.get_by_label("To").input_value())
    assert last_day in (before, after)
    assert last_day - first_day == timedelta(days=6)

    # The API over the page's own range ("To" included: the range ends the day after).
    usage = console.gql(
        console.admin_key,
        "query($s: DateTime, $e: DateTime) { usage(startTime: $s, endTime: $e, "
        "groupBy: [DAY, USER]) { day replies failedReplies promptTokens completionTokens "
        "user { name } } }",
        {
            "s": f"{first_day}T00:00:00+00:00",
            "e": f"{last_day + timedelta(days=1)}T00:00:00+00:00",
        },
    )["usage"]
    # Numbers as the page formats them (browser contexts use locale en-US).
    expected = [
        [
            row["day"],
            row["user"]["name"],
            f"{row['replies']:,}",
            f"{row['failedReplies']:,}",
            f"{row['promptTokens']:,}",
            f"{row['completionTokens']:,}",
        ]
        for row in usage
    ]
    assert [cells[:6] for cells in usage_rows_in_page(tab)] == expected
    mine = next(row for row in expected if row[1] == name)
    assert mine[2] == "3"
    # The UTC day the server counted the replies in (taken from it, not from this clock:
    # the test may run across midnight).
    replies_day = date.fromisoformat(mine[0])
    assert first_day <= replies_day <= last_day

    chart = tab.get_by_role("img", name=re.compile(r"^Replies per row, "))
    expect(chart).to_be_visible()
    expect(chart.locator(".chart-row")).to_have_count(len(expected))

    # By user alone; then the replies' day only ("To" includes its whole UTC day).
    tab.get_by_role("checkbox", name="Day").uncheck()
    tab.get_by_label("From").fill(replies_day.isoformat())
    tab.get_by_label("To").fill(replies_day.isoformat())
    tab.get_by_role("button", name="Show usage").click()
    expect(tab.get_by_role("columnheader", name="Day")).to_have_count(0)
    mine_row = tab.get_by_role("row").filter(has_text=name)
    expect(mine_row.get_by_role("cell").first).to_have_text("3")
    expect(tab.get_by_role("img", name=re.compile(r"^Replies per row, "))).to_be_visible()

    # The day before has none of these replies.
    day_before = (replies_day - timedelta(days=1)).isoformat()
    tab.get_by_label("From").fill(day_before)
    tab.get_by_label("To").fill(day_before)
    tab.get_by_role("button", name="Show usage").click()
    expect(tab.get_by_role("row").filter(has_text=name)).to_have_count(0)


def log_rows(tab: Locator) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = tab.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => ({level: row.dataset.level, createdAt: row.dataset.createdAt}))"
    )
    return rows


def test_logs_filter_by_level_page_with_load_more_and_come_newest_first(
    console: Console, open_page: OpenPage
) -> None:
    # An ERROR entry: a reply from a model server that is not there.
    broken = console.gql(
        console.admin_key,
        "mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }",
        {
            "input": {
                "modelName": unique("broken"),
                "modelVersion": "1",
                "provider": "openai",
                "baseUrl": free_port_url(),
            }
        },
    )["createModelConfig"]["id"]
    key = console.user(unique("logs-user"))
    broken_session = console.session(key, broken)
    failure = httpx.post(
        f"{console.url}/graphql",
        json={
            "query": SEND,
            "variables": {"input": {"sessionId": broken_session, "content": "hi"}},
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ).json()
    assert failure["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    # More than a page of INFO entries (session.created).
    for _ in range(55):
        console.session(key)
    total = console.gql(console.admin_key, "{ logs { totalCount } }")["logs"]["totalCount"]
    errors = console.gql(console.admin_key, "{ logs(level: ERROR) { totalCount } }")["logs"]
    assert total > 50

    page = open_admin(open_page, console, tab="logs")
    tab = panel(page, "logs")
    expect(tab.get_by_role("status")).to_have_text(f"Showing 50 of {total} entries.")
    first_page = log_rows(tab)
    assert len(first_page) == 50
    assert {row["level"] for row in first_page} >= {"INFO"}

    tab.get_by_role("button", name="Load more").click()
    expect(tab.locator("tbody tr")).to_have_count(min(total, 100))
    both_pages = log_rows(tab)
    times = [row["createdAt"] for row in both_pages]
    assert times == sorted(times, reverse=True), "newest first, across pages"
    assert both_pages[:50] == first_page

    tab.get_by_label("Level").select_option("ERROR")
    tab.get_by_role("button", name="Show logs").click()
    expect(tab.get_by_role("status")).to_have_text(
        f"Showing {errors['totalCount']} of {errors['totalCount']} entries."
    )
    assert {row["level"] for row in log_rows(tab)} == {"ERROR"}
    expect(tab.get_by_role("row").filter(has_text="model.failed").first).to_be_visible()
    expect(tab.get_by_role("button", name="Load more")).to_be_hidden()

    tab.get_by_label("Level").select_option("")
    # From: tomorrow, in the reader's local time: nothing yet.
    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    tab.get_by_label("From").fill(tomorrow)
    tab.get_by_role("button", name="Show logs").click()
    expect(tab.get_by_role("status")).to_have_text("No entries match.")
    tab.get_by_label("From").fill("")
    tab.get_by_role("button", name="Show logs").click()
    expect(tab.locator("tbody tr")).to_have_count(50)


def test_users_and_keys_create_promote_revoke_and_disable(
    console: Console, open_page: OpenPage
) -> None:
    doomed = unique("disable-me")
    doomed_key = console.user(doomed)
    page = open_admin(open_page, console, tab="users")
    tab = panel(page, "users")

    expect(tab.get_by_role("rowheader", name=doomed)).to_be_visible()
    count = tab.get_by_text(re.compile(r"^Showing \d+ of \d+ users\.$"))
    users = console.gql(console.admin_key, "{ users { totalCount } }")["users"]["totalCount"]
    expect(count).to_have_text(f"Showing {users} of {users} users.")

    # A new user: their key is shown once, and works.
    name = unique("keys-user")
    tab.get_by_role("button", name="New user").click()
    tab.get_by_label("Name").fill(name)
    tab.get_by_role("button", name="Create user").click()
    shown = tab.get_by_label("New API key")
    expect(shown).to_be_focused()
    expect(count).to_have_text(f"Showing {users + 1} of {users + 1} users.")
    key = shown.input_value()
    assert key.startswith("cgw_")
    assert console.gql(key, ME)["me"] == {"name": name, "role": "USER"}
    tab.get_by_role("button", name="Done").click()
    expect(tab.get_by_label("New API key")).to_have_count(0)
    assert key not in page.content()

    row = tab.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))
    expect(row.get_by_role("cell").nth(0)).to_have_text("User")
    row.get_by_role("button", name=f"Make admin: {name}").click()
    expect(row.get_by_role("cell").nth(0)).to_have_text("Admin")
    expect(row.get_by_role("button", name=f"Make user: {name}")).to_be_focused()
    assert console.gql(key, ME)["me"]["role"] == "ADMIN"

    # Their keys; revoking the one they have stops it at once.
    row.get_by_role("button", name=f"Keys: {name}").click()
    keys = page.get_by_role("region", name=f"Keys of {name}")
    expect(keys.get_by_role("row")).to_have_count(2)
    expect(keys).to_contain_text(key[:10])
    accept_next_dialog(page)
    keys.get_by_role("button", name=re.compile("^Revoke: key ")).click()
    expect(keys).to_contain_text("No working keys.")
    expect(row.get_by_role("cell").nth(3)).to_have_text("0")
    assert graphql_error_code(console, key, ME) in (401, "UNAUTHENTICATED")

    # Disabling a user stops their keys too.
    assert console.gql(doomed_key, ME)["me"]["name"] == doomed
    doomed_row = tab.get_by_role("row").filter(has=page.get_by_role("rowheader", name=doomed))
    accept_next_dialog(page)
    doomed_row.get_by_role("button", name=f"Disable: {doomed}").click()
    expect(doomed_row.get_by_role("button", name=f"Disable: {doomed}")).to_have_count(0)
    expect(doomed_row.get_by_role("cell").nth(2)).not_to_have_text("No")
    assert graphql_error_code(console, doomed_key, ME) in (401, "UNAUTHENTICATED")

    # A new key for the signed-in admin, shown once; "Copy" puts it on the clipboard.
    tab.get_by_role("button", name="New key for me").click()
    tab.get_by_label("Label").fill("from the admin page")
    tab.get_by_role("button", name="Create key").click()
    mine = tab.get_by_label("New API key").input_value()
    assert console.gql(mine, ME)["me"] == console.gql(console.admin_key, ME)["me"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    tab.get_by_role("button", name="Copy").click()
    expect(tab.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == mine


def test_a_non_admin_cannot_load_admin_data(console: Console, open_page: OpenPage) -> None:
    key = console.user(unique("plain-user"))
    page = open_page()
    operations: list[str] = []
    page.on(
        "request",
        lambda request: (
            operations.append(json.loads(request.post_data or "{}").get("query", ""))
            if request.url.endswith("/graphql") and request.method == "POST"
            else None
        ),
    )
    sign_in(page, console.url, key, path="/admin")
    expect(page.get_by_role("alert")).to_contain_text("Admins only")
    expect(page.get_by_role("tablist")).to_have_count(0)
    expect(page.get_by_role("table")).to_have_count(0)
    assert operations and all("me {" in query for query in operations), operations

    # The page's own credential, asking for admin data directly, is refused.
    answer = page.evaluate(
        """async () => {
            const response = await fetch("/graphql", {
                method: "POST",
                headers: {
                    "Content-Type": "application/json",
                    Authorization: `Bearer ${sessionStorage.getItem("cgw.credential")}`,
                },
                body: JSON.stringify({query: "{ users(first: 5) { totalCount } }"}),
            });
            return response.json();
        }"""
    )
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert not answer.get("data")


def test_tabs_work_with_the_keyboard_and_the_address_keeps_the_open_one(
    console: Console, open_page: OpenPage
) -> None:
    page = open_admin(open_page, console)
    configs_tab = page.get_by_role("tab", name="Model configs")
    configs_tab.focus()
    page.keyboard.press("ArrowRight")
    usage_tab = page.get_by_role("tab", name="Usage")
    expect(usage_tab).to_be_focused()
    expect(usage_tab).to_have_attribute("aria-selected", "true")
    expect(configs_tab).to_have_attribute("tabindex", "-1")
    expect(panel(page, "usage")).to_be_visible()
    expect(panel(page, "configs")).to_be_hidden()
    assert page.url.endswith("/admin#usage")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Users")).to_be_focused()
    page.keyboard.press("ArrowRight")  # wraps round
    expect(configs_tab).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")

    page.reload()
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")
    expect(panel(page, "users").get_by_role("table")).to_be_visible()
    # The skip link's #admin is no tab: the open one stays.
    page.keyboard.press("Tab")
    page.get_by_role("link", name="Skip to the content").press("Enter")
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")
    page.go_back()
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")
    page.go_back()
    expect(page.get_by_role("tab", name="Model configs")).to_have_attribute("aria-selected", "true")


def test_each_tab_is_accessible_with_screenshots_at_desktop_and_phone_width(
    console: Console, open_page: OpenPage
) -> None:
    name = unique("echo-screenshot")
    console.model_config(name, {"prefix": "Shot: "})
    key = console.user(unique("screenshot-user"))
    send(console, key, console.session(key), "a reply for the usage tab")

    page = open_admin(open_page, console)
    select_config(page, name)
    expect(page.get_by_role("region", name="Version history")).to_be_visible()
    screenshot(page, "admin-configs-desktop")
    assert_accessible(page)

    ready = {
        "usage": lambda tab: tab.get_by_role("img", name=re.compile("^Replies per row")),
        "logs": lambda tab: tab.get_by_role("table"),
        "users": lambda tab: tab.get_by_role("table"),
    }
    for name_of_tab, shown in ready.items():
        page.get_by_role("tab", name=TABS[name_of_tab]).click()
        expect(shown(panel(page, name_of_tab))).to_be_visible()
        screenshot(page, f"admin-{name_of_tab}-desktop")
        assert_accessible(page)

    phone = open_admin(open_page, console, viewport=PHONE)
    select_config(phone, name)
    expect(phone.get_by_role("region", name="Version history")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "admin-configs-phone")
    assert_accessible(phone)
