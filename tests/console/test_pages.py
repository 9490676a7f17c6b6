"""The console's pages as a whole: the sign-in page at desktop and phone width (screenshots,
axe-core), its keyboard order, and no sideways scrolling on a phone once signed in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.browsing import (
    DESKTOP,
    PHONE,
    Console,
    OpenPage,
    assert_accessible,
    screenshot,
    sign_in,
)

# A word no line can break at a space: a long link pasted into a message.
LONG_WORD = "https-example-test-" + "a" * 300
# The accessible name of what has the focus: its label, aria-label, or text.
FOCUSED_NAME = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  const label = el.labels && el.labels.length ? el.labels[0].textContent : null;
  return (label || el.getAttribute("aria-label") || el.textContent || "").trim();
}"""

# Move the keyboard's starting point to the top of the document (focusing <body> for a
# moment), so that the next Tab goes to the first focusable element, as after a load.
START_OVER = """() => {
  document.body.tabIndex = -1;
  document.body.focus();
  document.body.removeAttribute("tabindex");
}"""


def open_sign_in(page: Page, base_url: str) -> None:
    page.goto(base_url)
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


def assert_no_sideways_scrolling(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else PHONE["width"]
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide in a {width}px window"


def test_the_sign_in_page_at_desktop_and_phone_width(console: Console, open_page: OpenPage) -> None:
    for viewport, name in ((DESKTOP, "signin-desktop"), (PHONE, "signin-phone")):
        page = open_page(viewport=viewport)
        open_sign_in(page, console.url)
        assert_no_sideways_scrolling(page)
        screenshot(page, name)
        assert_accessible(page)


def test_tab_from_the_start_reaches_the_key_field_then_the_sign_in_button(
    console: Console, open_page: OpenPage
) -> None:
    page = open_page()
    open_sign_in(page, console.url)
    # The page puts the focus in the field; start over from the top, as after a load.
    page.evaluate(START_OVER)

    order: list[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED_NAME))
        if order[-1] == "Sign in":
            break

    assert order[0].startswith("Skip to"), order  # a skip link first
    assert "API key" in order, order
    assert order[order.index("API key") + 1] == "Sign in", order
    # The keyboard's focus is visible.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline
    # Enter in the field signs in: the form needs no mouse.
    page.get_by_label("API key").fill(console.user("pages-keyboard"))
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_chat_page_does_not_scroll_sideways_on_a_phone(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("pages-phone")
    session_id = console.gql(key, "mutation { createSession { id } }")["createSession"]["id"]
    console.gql(
        key,
        "mutation($s: ID!, $c: String!) { sendMessage(input: {sessionId: $s, content: $c}) "
        "{ __typename } }",
        {"s": session_id, "c": f"look at {LONG_WORD}"},
    )
    page = open_page(viewport=PHONE)

    sign_in(page, console.url, key)
    # The sessions list, once loaded: its session (or, for a user without one, the note).
    listed = page.get_by_role("list", name="Sessions list").get_by_role("listitem")
    empty = page.get_by_text("No sessions yet")
    expect(listed.or_(empty).first).to_be_visible()
    assert_no_sideways_scrolling(page)  # the sessions list

    page.goto(f"{console.url}/#/sessions/{session_id}")
    expect(page.locator("article[data-type='AI']")).to_contain_text(LONG_WORD[:40])
    assert_no_sideways_scrolling(page)  # a conversation with a word longer than the screen
