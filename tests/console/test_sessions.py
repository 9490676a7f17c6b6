"""The chat page's sessions sidebar: create with a chosen model config, rename, archive,
delete, search and open a hit, at a phone's width and a desktop's."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Dialog, Locator, Page, Request, expect

from tests.console.browsing import (
    PHONE,
    Console,
    OpenPage,
    assert_accessible,
    screenshot,
    sign_in,
)

SESSION = "query($id: ID!) { session(id: $id) { title archived modelConfig { id } } }"
RENAME = (
    "mutation($id: ID!, $title: String) { updateSession(id: $id, input: {title: $title}) { id } }"
)


def new_session(console: Console, key: str, title: str | None = None) -> str:
    session_id = console.session(key)
    if title is not None:
        console.gql(key, RENAME, {"id": session_id, "title": title})
    return session_id


def session_on_server(console: Console, key: str, session_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = console.gql(key, SESSION, {"id": session_id})["session"]
    return found


def on_server(console: Console, key: str, session_id: str) -> dict[str, Any]:
    found = session_on_server(console, key, session_id)
    assert found is not None, f"session {session_id} is gone"
    return found


def sessions_list(page: Page) -> Locator:
    return page.get_by_role("list", name="Sessions list")


def item_of(page: Page, session_id: str) -> Locator:
    return sessions_list(page).locator(f'li[data-session-id="{session_id}"]')


def search(page: Page, words: str) -> Locator:
    """Search from the sidebar (Enter); the results list."""
    field = page.get_by_role("searchbox", name="Search", exact=True)
    field.fill(words)
    field.press("Enter")
    return page.get_by_role("list", name="Search results", exact=True)


def test_a_user_creates_a_session_with_a_chosen_model_config(
    console: Console, open_page: OpenPage
) -> None:
    chosen = console.model_config("sessions-chosen", {"prefix": "Chosen: "})
    key = console.user("sessions-create")
    configs = console.gql(key, "{ modelConfigs { id isDefault } }")["modelConfigs"]
    default = next(config["id"] for config in configs if config["isDefault"])
    assert default != chosen
    page = open_page()
    sign_in(page, console.url, key)

    model = page.get_by_label("Model", exact=True)
    expect(model).to_have_value(default)
    expect(model.locator("option", has_text="sessions-chosen 1 (echo)")).to_have_count(1)
    model.select_option(chosen)
    page.get_by_role("button", name="New session", exact=True).click()

    expect(page).to_have_url(re.compile(r"#/sessions/[^/]+$"))
    session_id = page.url.rsplit("/", 1)[1]
    link = item_of(page, session_id).get_by_role("link", name="Untitled session", exact=True)
    expect(link).to_have_attribute("aria-current", "true")
    assert on_server(console, key, session_id)["modelConfig"]["id"] == chosen


def test_a_user_renames_archives_and_deletes_a_session(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("sessions-manage")
    new_session(console, key, "Kept session")
    session_id = new_session(console, key)
    page = open_page()
    sign_in(page, console.url, key)
    item = item_of(page, session_id)
    listed = sessions_list(page)
    expect(listed.get_by_role("listitem")).to_have_count(2)

    # Rename: an inline form; Escape cancels, Save stores and lists the new title.
    item.get_by_role("button", name="Rename", exact=True).click()
    title = item.get_by_label("Title", exact=True)
    expect(title).to_be_focused()
    title.fill("Not this")
    title.press("Escape")
    expect(item.get_by_role("button", name="Rename", exact=True)).to_be_focused()
    item.get_by_role("button", name="Rename", exact=True).click()
    item.get_by_label("Title", exact=True).fill("Trip plans")
    item.get_by_role("button", name="Save", exact=True).click()
    renamed = listed.get_by_role("link", name="Trip plans", exact=True)
    expect(renamed).to_be_focused()
    assert on_server(console, key, session_id)["title"] == "Trip plans"

    # Archive: it leaves the list, and is among the archived ones until unarchived.
    item.get_by_role("button", name="Archive", exact=True).click()
    expect(renamed).to_have_count(0)
    expect(listed.get_by_role("link", name="Kept session", exact=True)).to_be_focused()
    assert on_server(console, key, session_id)["archived"] is True
    page.get_by_label("Show archived", exact=True).check()
    expect(renamed).to_be_visible()
    expect(listed.get_by_role("link", name="Kept session", exact=True)).to_have_count(0)
    item.get_by_role("button", name="Unarchive", exact=True).click()
    expect(renamed).to_have_count(0)
    expect(page.get_by_text("No archived sessions.")).to_be_visible()
    page.get_by_label("Show archived", exact=True).uncheck()
    expect(renamed).to_be_visible()
    assert on_server(console, key, session_id)["archived"] is False

    # Delete the open session: a refused confirmation keeps it; then it goes, and closes.
    renamed.click()
    expect(page).to_have_url(re.compile(f"#/sessions/{session_id}$"))
    expect(renamed).to_have_attribute("aria-current", "true")
    questions: list[str] = []
    # Every deleteSession the page sends, in the order sent.
    deletes: list[Request] = []

    def on_request(request: Request) -> None:
        if "deleteSession" in (request.post_data or ""):
            deletes.append(request)

    page.on("request", on_request)

    def answer(accept: bool) -> None:
        def on_dialog(dialog: Dialog) -> None:
            questions.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        page.once("dialog", on_dialog)

    answer(False)
    item.get_by_role("button", name="Delete", exact=True).click()
    assert len(questions) == 1 and "Trip plans" in questions[0]
    expect(item.get_by_role("button", name="Delete", exact=True)).to_be_focused()
    answer(True)
    item.get_by_role("button", name="Delete", exact=True).click()
    expect(renamed).to_have_count(0)
    assert len(questions) == 2
    # Requests reach the test in the order the page sent them: had the refused confirmation
    # sent one, it would be here before the accepted one's.
    assert len(deletes) == 1, [request.post_data for request in deletes]
    expect(page).not_to_have_url(re.compile(session_id))
    expect(listed.get_by_role("link", name="Kept session", exact=True)).to_be_focused()
    assert session_on_server(console, key, session_id) is None


def test_a_user_searches_and_opens_a_hit_and_snippets_stay_text(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("sessions-search")
    session_id = new_session(console, key, "Camping")
    message_id = console.send(key, session_id, "Pack the zephyrine lantern tonight")["userMessage"][
        "id"
    ]
    hostile = "<img src=x onerror=alert(1)> quokkasaurus <b>bold</b>"
    console.send(key, session_id, hostile)
    page = open_page()
    sign_in(page, console.url, key)

    results = search(page, "zephyrine")
    hit = results.locator(f'a[data-message-id="{message_id}"]')
    expect(hit.locator("mark")).to_have_text("zephyrine")
    expect(hit).to_contain_text("Camping")
    hit.click()
    expect(page).to_have_url(re.compile(f"#/sessions/{session_id}/messages/{message_id}$"))

    # HTML in a message reaches the page as text, never as elements.
    results = search(page, "quokkasaurus")
    expect(results.locator("mark").first).to_have_text("quokkasaurus")
    expect(results.get_by_role("listitem").first).to_contain_text("<img src=x onerror=alert(1)>")
    expect(results.get_by_role("listitem").first).to_contain_text("<b>bold</b>")
    expect(results.locator("img")).to_have_count(0)
    expect(results.locator("b")).to_have_count(0)

    search(page, "nonexistentwordxyzzy")
    expect(page.get_by_text("No matches", exact=True)).to_be_visible()


def test_the_sidebar_at_a_phone_and_a_desktop_width_is_usable_and_accessible(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("sessions-layout")
    for title in ("Weekend plans", "Reading list", None):
        session_id = new_session(console, key, title)
    console.send(key, session_id, "Remember the marmalade recipe")

    phone = open_page(PHONE)
    sign_in(phone, console.url, key)
    listed = sessions_list(phone)
    expect(listed.get_by_role("listitem")).to_have_count(3)
    box = listed.bounding_box()
    assert box is not None and box["width"] > PHONE["width"] * 0.8, box
    screenshot(phone, "chat-sessions-phone")
    assert_accessible(phone)
    phone.get_by_role("button", name="New session", exact=True).click()
    expect(phone).to_have_url(re.compile(r"#/sessions/[^/]+$"))
    # On a phone the conversation takes the screen once a session is open.
    expect(listed).to_be_hidden()

    desktop = open_page()
    sign_in(desktop, console.url, key)
    expect(sessions_list(desktop).get_by_role("listitem")).to_have_count(4)
    assert_accessible(desktop)
    results = search(desktop, "marmalade")
    expect(results.locator("mark").first).to_have_text("marmalade")
    assert_accessible(desktop)
    screenshot(desktop, "chat-sessions-desktop")


def test_a_long_list_loads_more_on_request(console: Console, open_page: OpenPage) -> None:
    key = console.user("sessions-many")
    for number in range(1, 23):
        new_session(console, key, f"Session {number}")
    page = open_page()
    sign_in(page, console.url, key)
    listed = sessions_list(page)
    expect(listed.get_by_role("listitem")).to_have_count(20)
    expect(listed.get_by_role("link", name="Session 22", exact=True)).to_be_visible()
    page.get_by_role("button", name="Load more", exact=True).click()
    expect(listed.get_by_role("listitem")).to_have_count(22)
    expect(page.get_by_role("button", name="Load more", exact=True)).to_be_hidden()
    # The button went with the last page: focus goes on to the first session it brought.
    expect(listed.get_by_role("link", name="Session 2", exact=True)).to_be_focused()
