"""The chat page's conversation: send and watch the reply stream in, stop, regenerate and
switch variants, edit (fork), rate, reload, scroll back through a long history, live
messages from another tab, Markdown rendered safely, export, screenshots."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import (
    Locator,
    Page,
    Request,
    Route,
    WebSocket,
    WebSocketRoute,
    expect,
)

from tests.console.browsing import (
    PHONE,
    Console,
    OpenPage,
    PageProblems,
    assert_accessible,
    screenshot,
    sign_in,
)

HISTORY = """query($id: ID!) { session(id: $id) { messages(first: 100) { edges { node {
  id type content metadata feedback { rating } variants { id content }
} } } } }"""
UPDATE_CONFIG = """mutation($id: ID!, $input: UpdateModelConfigInput!) {
  updateModelConfig(id: $id, input: $input) { version }
}"""
SESSION_ADDRESS = re.compile(r"#/sessions/([^/]+)$")
# The page's GraphQL requests over HTTP (queries, mutations), for page.route().
GRAPHQL_URL = re.compile(r"/graphql$")
# A GraphQL request of the page's own that goes through the same routes as its others:
# once it is answered, every request the page had made before it has reached the routes.
SETTLE = """async () => {
  const { gql } = await import("/console/js/api.js");
  await gql("query Settle { __typename }");
}"""


# --- preparing through the API, reading back what the server stored


def stored(console: Console, key: str, session_id: str) -> list[dict[str, Any]]:
    """The session's history as the server has it, oldest first."""
    data = console.gql(key, HISTORY, {"id": session_id})
    return [edge["node"] for edge in data["session"]["messages"]["edges"]]


# A page of history the server could not read (as a fault of the server answers).
PAGE_FAILED = "The database is unavailable"
FAILED_ANSWER = {
    "status": 500,
    "json": {"errors": [{"message": PAGE_FAILED, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
}


# --- the page


def open_chat(page: Page, console: Console, key: str, session_id: str) -> None:
    """Sign in straight into the session and wait until its history is shown."""
    sign_in(page, console.url, key, path=f"/#/sessions/{session_id}")
    expect(conversation(page).get_by_role("heading", level=2)).not_to_have_text("Loading…")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def open_new_chat(console: Console, open_page: OpenPage, user: str) -> tuple[str, str, Page]:
    """A new user's new session, open in a new page: (the user's key, session id, page)."""
    key = console.user(user)
    session_id = console.session(key)
    page = open_page()
    open_chat(page, console, key, session_id)
    return key, session_id, page


def conversation(page: Page) -> Locator:
    return page.locator("#conversation")


def articles(page: Page) -> Locator:
    return page.get_by_role("list", name="Messages").get_by_role("article")


def replies(page: Page) -> Locator:
    return page.get_by_role("list", name="Messages").get_by_role("article", name="Reply")


def user_messages(page: Page) -> Locator:
    return page.get_by_role("list", name="Messages").get_by_role("article", name="Your message")


def texts(locator: Locator) -> list[str]:
    """The message text of each article (without its author, time and buttons)."""
    return [text.strip() for text in locator.locator(".message-text").all_inner_texts()]


def texts_of(page: Page) -> Locator:
    return articles(page).locator(".message-text")


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def send_by_api(console: Console, key: str, session_id: str, content: str) -> str:
    """Send a message as another client would (the echo model answers it); its id."""
    message_id: str = console.send(key, session_id, content)["userMessage"]["id"]
    return message_id


def is_older_page(request: Request) -> bool:
    """The conversation asks for a page of older messages (ConversationHistory `before` a
    cursor; the latest page is asked `before: null`)."""
    if request.method != "POST" or not GRAPHQL_URL.search(request.url):
        return False
    body = json.loads(request.post_data or "{}")
    variables = body.get("variables") or {}
    return "ConversationHistory" in body.get("query", "") and bool(variables.get("before"))


def session_link(page: Page, title: str) -> Locator:
    listed = page.get_by_role("list", name="Sessions list")
    return listed.get_by_role("link", name=title, exact=True)


def send_and_wait(page: Page, text: str) -> Locator:
    """Send `text` and wait for its whole reply (the echo model's); the reply's article."""
    count = replies(page).count()
    send(page, text)
    reply = replies(page).nth(count)
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    expect(reply.locator(".message-text")).to_have_text("Echo: " + text)
    return reply


def open_chat_following(page: Page, console: Console, key: str, session_id: str) -> None:
    """open_chat, and wait until the page has subscribed to messageAdded (from then on it
    sees what other tabs and clients store)."""
    subscriptions: list[str] = []

    def is_subscription(payload: str | bytes) -> bool:
        return "messageAdded" in str(payload)

    def sent(payload: str | bytes) -> None:
        if is_subscription(payload):
            subscriptions.append(str(payload))

    def watch(socket: WebSocket) -> None:
        # Registered as the socket is announced, before any frame of it reaches Python.
        socket.on("framesent", sent)

    page.on("websocket", watch)
    with page.expect_websocket() as socket_info:
        open_chat(page, console, key, session_id)
    # Events reach Python only while it waits on Playwright: checking the frames seen so far
    # and then waiting for the next one cannot miss a frame in between.
    if not subscriptions:
        socket_info.value.wait_for_event("framesent", predicate=is_subscription)
    page.remove_listener("websocket", watch)


# --- the tests


def test_a_message_is_sent_and_its_reply_streams_in(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-send")
    # Typing a word every 200 ms: the reply is seen while it is written (25 words: 5 s).
    session_id = console.session(key, console.model_config("echo-typing", {"chunk_delay_ms": 200}))
    page = open_page()
    open_chat(page, console, key, session_id)
    expect(conversation(page).get_by_role("heading", level=2)).to_have_text("Untitled session")

    # The first line names the session.
    text = "Hello there\n" + " ".join(f"word{number}" for number in range(1, 23))
    send(page, text)
    expect(user_messages(page).last.locator(".message-text")).to_have_text(text)
    reply = replies(page).last
    expect(reply).to_have_attribute("aria-busy", "true")
    expect(reply).to_contain_text("Writing…")
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    expect(reply).not_to_have_attribute("aria-busy", "true")
    expect(reply.locator(".message-text")).to_have_text("Echo: " + text)
    expect(conversation(page).get_by_role("status")).to_have_text("Reply complete")
    # The composer was emptied once the message was stored; the title came with it.
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    expect(conversation(page).get_by_role("heading", level=2)).to_have_text("Hello there")
    expect(reply.get_by_role("button", name="Regenerate")).to_be_visible()

    reply.get_by_text("Details").click()
    details = reply.locator("dl")
    for term in ("Model", "Config version", "Finish reason", "Tokens", "Latency"):
        expect(details.get_by_text(term, exact=True)).to_be_visible()
    ids = [message["id"] for message in stored(console, key, session_id)]
    assert ids == [
        user_messages(page).last.get_attribute("data-message-id"),
        reply.get_attribute("data-message-id"),
    ]


def test_a_long_reply_is_stopped_part_way(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-stop")
    config_id = console.model_config("echo-slow", {"chunk_delay_ms": 300})
    session_id = console.session(key, config_id)
    page = open_page()
    open_chat(page, console, key, session_id)
    words = " ".join(f"word{number}" for number in range(1, 41))
    full_reply = "Echo: " + words

    send(page, words)
    reply = replies(page).last
    expect(reply).to_contain_text("word2")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_enabled()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    stop.click()

    expect(reply).to_have_attribute("data-finish-reason", "cancelled")
    expect(reply.locator(".reply-status")).to_have_text("Stopped")
    expect(stop).to_be_disabled()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    shown = reply.locator(".message-text").inner_text().strip()
    assert full_reply.startswith(shown) and len(shown) < len(full_reply), shown
    assert "word2" in shown
    on_server = stored(console, key, session_id)[-1]
    assert on_server["type"] == "AI"
    assert on_server["metadata"]["finish_reason"] == "cancelled"
    assert on_server["content"].strip() == shown
    assert on_server["id"] == reply.get_attribute("data-message-id")


def test_a_reply_stopped_before_its_first_word_is_stored_empty(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-stop-early")
    # The first word comes after 5 s: the stop comes before it.
    config_id = console.model_config("echo-late", {"chunk_delay_ms": 5000})
    session_id = console.session(key, config_id)
    page = open_page()
    open_chat(page, console, key, session_id)

    send(page, "Never mind")
    status = conversation(page).get_by_role("status")
    # The message is stored and its turn holds the session: there is a reply to stop.
    expect(status).to_have_text("Waiting for the reply…")
    page.get_by_role("button", name="Stop").click()

    # The server ends the turn with what was said (nothing) as a stopped reply.
    expect(status).to_have_text("Reply stopped")
    reply = replies(page).last
    expect(reply).to_have_attribute("data-finish-reason", "cancelled")
    expect(reply.locator(".reply-status")).to_have_text("Stopped")
    expect(conversation(page).get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    history = stored(console, key, session_id)
    assert [(m["type"], m["content"]) for m in history] == [("USER", "Never mind"), ("AI", "")]
    assert history[1]["metadata"]["finish_reason"] == "cancelled"


def test_a_reply_is_regenerated_and_its_variants_switched(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-regenerate")
    config_id = console.model_config("echo-again", {})
    session_id = console.session(key, config_id)
    page = open_page()
    open_chat(page, console, key, session_id)
    reply = send_and_wait(page, "Say it twice")
    first_id = reply.get_attribute("data-message-id")
    expect(reply.get_by_role("button", name="Previous variant")).to_have_count(0)
    # The next reply of this config starts differently: the two variants can be told apart.
    console.gql(
        console.admin_key,
        UPDATE_CONFIG,
        {"id": config_id, "input": {"parameters": {"prefix": "Again: "}}},
    )

    page.get_by_role("button", name="Regenerate").click()
    # The button goes while the new reply is written: the focus is on the reply itself.
    expect(reply).to_be_focused()
    expect(reply.locator(".message-text")).to_have_text("Again: Say it twice")
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    expect(reply.locator(".variant-position")).to_have_text("2/2")
    expect(reply).to_be_focused()
    second_id = reply.get_attribute("data-message-id")
    assert second_id != first_id
    expect(replies(page)).to_have_count(1)  # in place: the history's length stays

    # A switch is announced by the conversation's one status line, not by each reply.
    assert reply.locator(".variant-position").get_attribute("aria-live") is None
    status = conversation(page).get_by_role("status")
    reply.get_by_role("button", name="Previous variant").click()
    expect(reply.locator(".variant-position")).to_have_text("1/2")
    expect(status).to_have_text("Variant 1 of 2")
    # "Previous variant" is disabled at the first: the focus went to "Next variant".
    expect(reply.get_by_role("button", name="Next variant")).to_be_focused()
    expect(reply.locator(".message-text")).to_have_text("Echo: Say it twice")
    expect(reply).to_have_attribute("data-message-id", first_id or "")
    reply.get_by_role("button", name="Next variant").click()
    expect(reply.locator(".variant-position")).to_have_text("2/2")
    expect(status).to_have_text("Variant 2 of 2")
    expect(reply.locator(".message-text")).to_have_text("Again: Say it twice")

    history = stored(console, key, session_id)
    assert [message["type"] for message in history] == ["USER", "AI"]
    assert history[1]["id"] == second_id
    assert [variant["id"] for variant in history[1]["variants"]] == [first_id, second_id]


def test_an_edited_message_is_sent_in_a_fork(console: Console, open_page: OpenPage) -> None:
    key, session_id, page = open_new_chat(console, open_page, "chat-edit")
    send_and_wait(page, "What is the capital of France?")

    user_messages(page).last.get_by_role("button", name="Edit").click()
    edited = page.get_by_label("Edited message")
    expect(edited).to_be_focused()
    expect(edited).to_have_value("What is the capital of France?")
    edited.fill("What is the capital of Italy?")
    page.get_by_role("button", name="Save and send").click()

    expect(page).not_to_have_url(re.compile(re.escape(session_id)))
    address = SESSION_ADDRESS.search(page.url)
    assert address, page.url
    fork_id = address.group(1)
    expect(user_messages(page)).to_have_count(1)
    expect(user_messages(page).locator(".message-text")).to_have_text(
        "What is the capital of Italy?"
    )
    expect(replies(page).locator(".message-text")).to_have_text(
        "Echo: What is the capital of Italy?"
    )
    expect(replies(page)).to_have_attribute("data-finish-reason", "stop")

    assert [m["content"] for m in stored(console, key, fork_id)] == [
        "What is the capital of Italy?",
        "Echo: What is the capital of Italy?",
    ]
    assert [m["content"] for m in stored(console, key, session_id)] == [
        "What is the capital of France?",
        "Echo: What is the capital of France?",
    ]


def test_a_reply_is_rated_and_the_rating_cleared(console: Console, open_page: OpenPage) -> None:
    key, session_id, page = open_new_chat(console, open_page, "chat-rate")
    reply = send_and_wait(page, "Rate me")
    good = reply.get_by_role("button", name="Good reply")
    bad = reply.get_by_role("button", name="Bad reply")
    expect(good).to_have_attribute("aria-pressed", "false")

    def rating() -> str | None:
        feedback = stored(console, key, session_id)[-1]["feedback"]
        return feedback and feedback["rating"]

    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    assert rating() == "UP"
    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    assert rating() == "DOWN"
    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "false")
    expect(good).to_have_attribute("aria-pressed", "false")
    assert rating() is None

    # The rating is read back with the history.
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(replies(page).last.get_by_role("button", name="Good reply")).to_have_attribute(
        "aria-pressed", "true"
    )


def test_the_history_is_shown_again_after_a_reload(console: Console, open_page: OpenPage) -> None:
    *_, page = open_new_chat(console, open_page, "chat-reload")
    send_and_wait(page, "First")
    # From the keyboard: Shift+Enter starts a new line, Enter sends.
    field = page.get_by_label("Message", exact=True)
    field.press_sequentially("Second")
    field.press("Shift+Enter")
    field.press_sequentially("line")
    field.press("Enter")
    expect(replies(page)).to_have_count(2)
    expect(replies(page).last).to_have_attribute("data-finish-reason", "stop")
    # "Send" pressed from the keyboard waits (disabled) while the reply is written: the
    # focus goes to the field, and stays there.
    field.fill("Third")
    page.get_by_role("button", name="Send", exact=True).press("Enter")
    expect(replies(page)).to_have_count(3)
    expect(replies(page).last).to_have_attribute("data-finish-reason", "stop")
    expect(field).to_be_focused()

    page.reload()  # the key stays in this tab's sessionStorage
    sent = ["First", "Second\nline", "Third"]
    expected = [text for message in sent for text in (message, "Echo: " + message)]
    expect(texts_of(page)).to_have_text(expected)
    types = [article.get_attribute("data-type") for article in articles(page).all()]
    assert types == ["USER", "AI"] * 3
    assert texts(user_messages(page)) == sent  # its line break kept
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def test_older_messages_load_when_scrolling_up(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-scroll")
    session_id = console.session(key)
    for number in range(1, 41):
        console.send(key, session_id, f"q{number}")
    page = open_page()
    open_chat(page, console, key, session_id)
    listed = articles(page)
    expect(listed).to_have_count(30)  # the latest page only
    expect(listed.last.locator(".message-text")).to_have_text("Echo: q40")
    expect(listed.last).to_be_in_viewport()
    start = page.get_by_text("This is the start of the conversation.")
    expect(start).to_be_hidden()

    for shown in (60, 80):
        oldest = listed.first.get_attribute("data-message-id")
        listed.first.scroll_into_view_if_needed()
        expect(listed).to_have_count(shown)
        # Put above without moving what the reader was looking at.
        expect(page.locator(f'article[data-message-id="{oldest}"]')).to_be_in_viewport()

    expect(listed.first.locator(".message-text")).to_have_text("q1")
    expect(listed.nth(1).locator(".message-text")).to_have_text("Echo: q1")
    listed.first.scroll_into_view_if_needed()
    expect(start).to_be_visible()
    assert texts(user_messages(page)) == [f"q{number}" for number in range(1, 41)]


def test_earlier_messages_load_from_the_keyboard_and_take_the_focus(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-load-keys")
    session_id = console.session(key)
    for number in range(1, 21):  # 40 messages: the latest page (30), then one more (10)
        console.send(key, session_id, f"k{number}")
    page = open_page()
    open_chat(page, console, key, session_id)
    listed = articles(page)
    expect(listed).to_have_count(30)

    load = page.get_by_role("button", name="Load earlier messages")
    # Focusing it scrolls it into view, which may load the page by itself already: either
    # way the page's first message takes the focus (the button goes with the last page).
    load.focus()
    page.keyboard.press("Enter")
    expect(listed).to_have_count(40)
    first = listed.first
    expect(first.locator(".message-text")).to_have_text("k1")
    expect(first).to_be_focused()
    expect(load).to_be_hidden()


def test_a_search_hit_deep_in_the_history_is_shown_and_focused(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-reveal")
    session_id = console.session(key)
    first = None
    for number in range(1, 36):
        sent = console.send(key, session_id, f"m{number}")
        first = first or sent["userMessage"]["id"]
    page = open_page()
    sign_in(page, console.url, key, path=f"/#/sessions/{session_id}/messages/{first}")
    target = page.locator(f'article[data-message-id="{first}"]')
    expect(target).to_be_focused()
    expect(target).to_have_class(re.compile("highlighted"))
    expect(target).to_be_in_viewport()
    expect(target.locator(".message-text")).to_have_text("m1")


def test_an_older_page_that_failed_is_asked_again_only_by_retry(
    console: Console, open_page: OpenPage, page_problems: PageProblems
) -> None:
    key = console.user("chat-older-fails")
    session_id = console.session(key)
    for number in range(1, 21):  # 40 messages: the latest page (30), then one more (10)
        send_by_api(console, key, session_id, f"f{number}")
    page = open_page()
    page_problems.expect("status of 500")  # the failed page, as the browser logs it
    older: list[Request] = []
    failing = [True]

    def route(handled: Route) -> None:
        if is_older_page(handled.request):
            older.append(handled.request)
            if failing[0]:
                handled.fulfill(**FAILED_ANSWER)
                return
        handled.fallback()

    page.route(GRAPHQL_URL, route)
    open_chat(page, console, key, session_id)
    listed = articles(page)
    expect(listed).to_have_count(30)

    listed.first.scroll_into_view_if_needed()  # the reader is at the top
    alert = conversation(page).get_by_role("alert")
    expect(alert).to_contain_text(f"The request failed: {PAGE_FAILED}")
    # Shown once, and not asked again by itself (the top is still in view).
    page.evaluate(SETTLE)
    assert len(older) == 1, f"{len(older)} requests for the older page"
    expect(listed).to_have_count(30)
    expect(page.get_by_role("button", name="Load earlier messages")).to_be_visible()

    failing[0] = False
    alert.get_by_role("button", name="Retry").click()
    expect(listed).to_have_count(40)
    expect(listed.first.locator(".message-text")).to_have_text("f1")
    expect(page.get_by_text("This is the start of the conversation.")).to_be_visible()
    expect(alert).to_have_count(0)
    page.evaluate(SETTLE)
    assert len(older) == 2, f"{len(older)} requests for the older page"


def test_a_search_hit_behind_a_page_that_failed_keeps_the_error(
    console: Console, open_page: OpenPage, page_problems: PageProblems
) -> None:
    key = console.user("chat-reveal-fails")
    session_id = console.session(key)
    # 70 messages: the first is two older pages back.
    first = send_by_api(console, key, session_id, "r1")
    for number in range(2, 36):
        send_by_api(console, key, session_id, f"r{number}")
    page = open_page()
    page_problems.expect("status of 500")
    older: list[Request] = []

    def route(handled: Route) -> None:
        if is_older_page(handled.request):
            older.append(handled.request)
            if len(older) == 1:
                handled.fulfill(**FAILED_ANSWER)
                return
        handled.fallback()

    page.route(GRAPHQL_URL, route)
    sign_in(page, console.url, key, path=f"/#/sessions/{session_id}/messages/{first}")
    alert = conversation(page).get_by_role("alert")
    expect(alert).to_contain_text(f"The request failed: {PAGE_FAILED}")
    page.evaluate(SETTLE)
    # The error stays: the message may well be there (it was not "not found").
    expect(alert).to_contain_text(PAGE_FAILED)
    expect(alert).not_to_contain_text("not in this session")
    assert len(older) == 1

    # "Retry" goes on looking for it.
    alert.get_by_role("button", name="Retry").click()
    target = page.locator(f'article[data-message-id="{first}"]')
    expect(target).to_be_focused()
    expect(target).to_have_class(re.compile("highlighted"))
    expect(target.locator(".message-text")).to_have_text("r1")
    expect(alert).to_have_count(0)


def test_a_session_deleted_meanwhile_says_so_when_older_messages_are_asked(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-older-gone")
    session_id = console.session(key)
    for number in range(1, 21):
        send_by_api(console, key, session_id, f"g{number}")
    page = open_page()
    older: list[Request] = []
    page.on("request", lambda request: older.append(request) if is_older_page(request) else None)
    open_chat(page, console, key, session_id)
    expect(articles(page)).to_have_count(30)

    # Deleted in another tab; then the reader scrolls up.
    console.gql(key, "mutation($id: ID!) { deleteSession(id: $id) }", {"id": session_id})
    articles(page).first.scroll_into_view_if_needed()
    heading = conversation(page).get_by_role("heading", level=2)
    expect(heading).to_have_text("Session not found")
    expect(conversation(page)).to_contain_text("does not exist, or it is not yours")
    expect(page.get_by_label("Message", exact=True)).to_be_hidden()
    page.evaluate(SETTLE)
    assert len(older) == 1, f"{len(older)} requests for the older page"


def test_an_older_page_that_comes_after_another_session_opened_is_dropped(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-older-late")
    long_session = console.session(key)
    send_by_api(console, key, long_session, "Long one")
    for number in range(2, 21):
        send_by_api(console, key, long_session, f"l{number}")
    short_session = console.session(key)
    send_by_api(console, key, short_session, "Short one")
    page = open_page()
    held: list[Route] = []  # the long session's older page, answered when the test says

    def route(handled: Route) -> None:
        if is_older_page(handled.request):
            held.append(handled)
        else:
            handled.fallback()

    page.route(GRAPHQL_URL, route)
    open_chat(page, console, key, long_session)
    listed = articles(page)
    expect(listed).to_have_count(30)
    load = page.get_by_role("button", name=re.compile("earlier messages"))
    with page.expect_request(is_older_page):
        listed.first.scroll_into_view_if_needed()
    expect(load).to_have_text("Loading earlier messages…")

    session_link(page, "Short one").click()
    heading = conversation(page).get_by_role("heading", level=2)
    expect(heading).to_have_text("Short one")
    expect(texts_of(page)).to_have_text(["Short one", "Echo: Short one"])
    start = page.get_by_text("This is the start of the conversation.")
    expect(start).to_be_visible()
    expect(load).to_be_hidden()

    # The long session's page comes now: the short one's top stays as it is.
    assert len(held) == 1
    late = held[0]
    with page.expect_request_finished(lambda request: request == late.request):
        late.fulfill(response=late.fetch())
    page.evaluate(SETTLE)
    expect(load).to_be_hidden()
    expect(start).to_be_visible()
    expect(texts_of(page)).to_have_text(["Short one", "Echo: Short one"])
    expect(heading).to_have_text("Short one")


def test_a_session_that_is_not_there_says_so(console: Console, open_page: OpenPage) -> None:
    owner = console.user("chat-owner")
    theirs = console.session(owner)
    console.send(owner, theirs, "Private")
    key = console.user("chat-stranger")
    for session_id in (theirs, "no-such-session"):
        page = open_page()
        sign_in(page, console.url, key, path=f"/#/sessions/{session_id}")
        heading = conversation(page).get_by_role("heading", level=2)
        expect(heading).to_have_text("Session not found")
        expect(conversation(page)).to_contain_text("does not exist, or it is not yours")
        expect(page.get_by_label("Message", exact=True)).to_be_hidden()
        expect(conversation(page)).not_to_contain_text("Private")


def test_another_tab_sees_new_messages_live(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-tabs")
    session_id = console.session(key)
    writer = open_page()
    reader = open_page()
    open_chat(writer, console, key, session_id)
    open_chat_following(reader, console, key, session_id)

    send_and_wait(writer, "From the other tab")
    expect(texts_of(reader)).to_have_text(["From the other tab", "Echo: From the other tab"])
    expect(replies(reader).last).to_have_attribute("data-finish-reason", "stop")

    console.send(key, session_id, "From the API")
    expected = [
        "From the other tab",
        "Echo: From the other tab",
        "From the API",
        "Echo: From the API",
    ]
    expect(texts_of(reader)).to_have_text(expected)
    # The writer got its own messages back through messageAdded too: shown once.
    expect(texts_of(writer)).to_have_text(expected)

    # A reply regenerated in one tab replaces the reply in the other, as a second variant.
    writer.get_by_role("button", name="Regenerate").click()
    expect(replies(writer).last.locator(".variant-position")).to_have_text("2/2")
    expect(replies(reader).last.locator(".variant-position")).to_have_text("2/2")
    expect(replies(reader).last).to_have_attribute(
        "data-message-id", replies(writer).last.get_attribute("data-message-id") or ""
    )
    expect(texts_of(reader)).to_have_text(expected)


def test_a_send_on_its_way_is_not_kept_as_a_draft(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-draft")
    first = console.session(key)
    send_by_api(console, key, first, "First session")
    second = console.session(key)
    send_by_api(console, key, second, "Second session")
    page = open_page()
    # The page's WebSocket goes through here: a send waits until the test lets it go on.
    held: list[tuple[WebSocketRoute, str | bytes]] = []

    def route(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if "sendMessageStream" in str(message):
                held.append((server, message))
            else:
                server.send(message)

        socket.on_message(from_page)

    page.route_web_socket(re.compile(r"/graphql$"), route)
    open_chat_following(page, console, key, first)
    field = page.get_by_label("Message", exact=True)
    heading = conversation(page).get_by_role("heading", level=2)
    expect(heading).to_have_text("First session")

    send(page, "On its way")
    expect(user_messages(page).last.locator(".message-text")).to_have_text("On its way")
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(field).to_have_value("On its way")  # until the server has stored it

    session_link(page, "Second session").click()
    expect(heading).to_have_text("Second session")
    expect(field).to_have_value("")
    session_link(page, "First session").click()
    expect(heading).to_have_text("First session")
    expect(texts_of(page)).to_have_text(["First session", "Echo: First session"])
    # Not shown again as a draft: sent again, it would be stored twice.
    expect(field).to_have_value("")

    # The send reaches the server now: stored once, shown once (live).
    assert len(held) == 1
    server, message = held[0]
    server.send(message)
    expected = ["First session", "Echo: First session", "On its way", "Echo: On its way"]
    expect(texts_of(page)).to_have_text(expected)
    assert [m["content"] for m in stored(console, key, first)] == expected


def test_the_skip_link_keeps_the_open_session(console: Console, open_page: OpenPage) -> None:
    _, session_id, page = open_new_chat(console, open_page, "chat-skip")
    send_and_wait(page, "Still here")

    skip = page.get_by_role("link", name="Skip to the conversation")
    skip.focus()
    page.keyboard.press("Enter")
    # The fragment is not a place of the page: the address names the session again (a
    # reload opens it), which is how the page shows it has handled the change.
    expect(page).to_have_url(re.compile(f"#/sessions/{session_id}$"))
    expect(conversation(page).get_by_role("heading", level=2)).to_have_text("Still here")
    expect(texts_of(page)).to_have_text(["Still here", "Echo: Still here"])
    expect(page.get_by_label("Message", exact=True)).to_be_visible()
    page.reload()
    expect(texts_of(page)).to_have_text(["Still here", "Echo: Still here"])


def test_messages_stored_while_the_connection_dropped_are_shown(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-reconnect")
    session_id = console.session(key)
    page = open_page()
    # Every WebSocket of the page goes through here (to the real server), so that the test
    # can drop it.
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def route(socket: WebSocketRoute) -> None:
        sockets.append((socket, socket.connect_to_server()))

    page.route_web_socket(re.compile(r"/graphql$"), route)
    open_chat(page, console, key, session_id)
    # A send streams over the same connection, after the page's messageAdded subscription.
    send_and_wait(page, "Before the drop")
    assert len(sockets) == 1

    def catching_up(request: Request) -> bool:
        return "ConversationHistory" in (request.post_data or "")

    with page.expect_request(catching_up):
        # A dropped connection (the server restarting): graphql-ws connects again after a
        # second or more and subscribes again, silently; what was stored meanwhile...
        page_side, server_side = sockets[0]
        server_side.close()
        page_side.close(code=1012, reason="restarting")
        console.send(key, session_id, "In the gap")
    # ...is read from the history once connected again.
    assert len(sockets) == 2
    expected = ["Before the drop", "Echo: Before the drop", "In the gap", "Echo: In the gap"]
    expect(texts_of(page)).to_have_text(expected)
    expect(conversation(page).get_by_role("alert")).to_have_count(0)

    # Live again: a message stored now comes through the new connection.
    console.send(key, session_id, "After it")
    expect(texts_of(page)).to_have_text([*expected, "After it", "Echo: After it"])


def test_markdown_in_replies_is_rendered_safely(console: Console, open_page: OpenPage) -> None:
    *_, page = open_new_chat(console, open_page, "chat-markdown")
    text = "**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))"

    send(page, text)
    reply = replies(page).last
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply).to_contain_text("<img src=x onerror=alert(1)>")
    expect(conversation(page).locator("img")).to_have_count(0)
    expect(conversation(page).locator('a[href^="javascript"]')).to_have_count(0)
    # The user's own message is shown exactly as typed.
    expect(user_messages(page).last.locator(".message-text")).to_have_text(text)
    expect(user_messages(page).last.locator("strong")).to_have_count(0)


def test_an_aligned_table_in_a_reply_is_aligned_by_classes(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("chat-table")
    session_id = console.session(key)
    page = open_page()  # an inline style the CSP refused would fail the test
    open_chat(page, console, key, session_id)

    # The echo repeats it after "Echo: ", which the first line takes.
    send(page, "Table:\n\n| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    reply = replies(page).last
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    table = reply.locator(".message-text table")
    expect(table).to_have_count(1)
    expect(table.locator("th")).to_have_text(["a", "b", "c"])
    expect(table.locator("td")).to_have_text(["1", "2", "3"])
    for row in ("th", "td"):
        cells = table.locator(row)
        for at, side in enumerate(("left", "center", "right")):
            expect(cells.nth(at)).to_have_class(f"align-{side}")
            # Retried like every expect: a cell the console renders again in between is
            # detached, and a detached element has no computed style ("" once in CI).
            expect(cells.nth(at)).to_have_css("text-align", side)
    expect(reply.locator("[style]")).to_have_count(0)


def test_images_in_replies_are_links_never_loaded(console: Console, open_page: OpenPage) -> None:
    key = console.user("chat-images")
    session_id = console.session(key)
    page = open_page()  # a console error (an image the CSP refused) fails the test
    open_chat(page, console, key, session_id)
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg"
        "YGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    text = (
        "See ![](https://images.example.com/cat.png),"
        " ![a chart](https://images.example.com/chart.png)"
        f" and ![pixel]({pixel})"
    )

    send(page, text)
    reply = replies(page).last
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    links = reply.locator(".message-text a")
    expect(links).to_have_text(["https://images.example.com/cat.png", "a chart"])
    expect(links.first).to_have_attribute("href", "https://images.example.com/cat.png")
    expect(links.nth(1)).to_have_attribute("href", "https://images.example.com/chart.png")
    for link in links.all():
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    # A data: image is neither loaded nor linked: its alt text shows.
    expect(reply.locator(".message-text")).to_contain_text("[image: pixel]")
    expect(reply.locator('a[href^="data:"]')).to_have_count(0)
    expect(page.locator("img")).to_have_count(0)


def test_a_session_is_exported_as_markdown_and_json(console: Console, open_page: OpenPage) -> None:
    *_, page = open_new_chat(console, open_page, "chat-export")
    send_and_wait(page, "Keep this")

    with page.expect_download() as markdown_download:
        page.get_by_role("button", name="Export Markdown").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename.endswith(".md"), markdown.suggested_filename
    text = markdown.path().read_text(encoding="utf-8")
    assert "Keep this" in text and "Echo: Keep this" in text

    with page.expect_download() as json_download:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(json_download.value.path().read_text(encoding="utf-8"))
    assert [message["content"] for message in exported["messages"]] == [
        "Keep this",
        "Echo: Keep this",
    ]


def test_screenshots_of_a_conversation_at_desktop_and_phone_width(
    console: Console, open_page: OpenPage
) -> None:
    key, session_id, page = open_new_chat(console, open_page, "chat-screens")
    send_and_wait(page, "Hello!")
    plan = "# Plan\n\n1. **Read** the `README`\n2. Run `make serve`\n\n> Then chat."
    send(page, plan)
    expect(replies(page).last).to_have_attribute("data-finish-reason", "stop")
    expect(replies(page).last.locator("strong")).to_have_text("Read")
    replies(page).last.get_by_role("button", name="Good reply").click()
    expect(replies(page).last.get_by_role("button", name="Good reply")).to_have_attribute(
        "aria-pressed", "true"
    )
    screenshot(page, "chat-desktop")
    assert_accessible(page)

    phone = open_page(viewport=PHONE)
    open_chat(phone, console, key, session_id)
    expect(replies(phone)).to_have_count(2)
    sessions = phone.get_by_role("button", name="Sessions", exact=True)
    expect(sessions).to_be_visible()
    no_overflow = "() => document.documentElement.scrollWidth <= window.innerWidth"
    assert phone.evaluate(no_overflow)
    screenshot(phone, "chat-phone")
    assert_accessible(phone)
    sessions.click()
    expect(phone.get_by_role("list", name="Messages")).to_be_hidden()
    # The button went with the conversation: the focus is on the session in the list.
    listed = phone.get_by_role("list", name="Sessions list")
    expect(listed.get_by_role("link", name="Hello!", exact=True)).to_be_focused()
