"""The conversation's errors: a rate limit and a model that fails, each shown with "Retry",
which sends again with the same retry key (clientMessageId): nothing is stored twice."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Route, expect

from db.services.reply_runs import STOP_REQUESTED
from tests.console.browsing import Console, OpenPage, PageProblems
from tests.console.test_chat import (
    conversation,
    open_chat,
    open_new_chat,
    replies,
    send,
    send_and_wait,
    session_link,
    stored,
    user_messages,
)
from tests.servers import free_port

MODEL_KEY_ENV = "CONSOLE_TEST_MODEL_KEY"
REPLIES_PER_MINUTE = 2
UPDATE_SESSION = """mutation($id: ID!, $input: UpdateSessionInput!) {
  updateSession(id: $id, input: $input) { id }
}"""
EXPORT_URL = re.compile(r"/api/v1/sessions/[^/]+/export")
EXPORT_FAILED = {"status": 500, "json": {"code": "INTERNAL", "message": "The export broke"}}
CREATE_CONFIG = """mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { id }
}"""


@pytest.fixture(scope="module")
def console_settings() -> dict[str, str]:
    return {
        "REPLY_RATE_LIMIT_PER_MINUTE": str(REPLIES_PER_MINUTE),
        # A model that cannot be reached fails at once, without retries.
        "PROVIDER_MAX_RETRIES": "0",
        "PROVIDER_CONNECT_TIMEOUT": "2",
        MODEL_KEY_ENV: "sk-console-test-not-a-real-key",
    }


def unreachable_model(console: Console) -> str:
    """An `openai` config whose server is a loopback port nothing listens on."""
    created = console.gql(
        console.admin_key,
        CREATE_CONFIG,
        {
            "input": {
                "modelName": "gone-model",
                "modelVersion": "1",
                "provider": "openai",
                "baseUrl": f"http://127.0.0.1:{free_port()}/v1",
                "apiKeyEnv": MODEL_KEY_ENV,
            }
        },
    )
    config_id: str = created["createModelConfig"]["id"]
    return config_id


def test_a_rate_limited_send_says_so_and_keeps_the_text(
    console: Console, open_page: OpenPage
) -> None:
    key, session_id, page = open_new_chat(console, open_page, "errors-rate")
    for number in range(1, REPLIES_PER_MINUTE + 1):
        send_and_wait(page, f"Message {number}")

    send(page, "One too many")
    alert = conversation(page).get_by_role("alert")
    expect(alert).to_contain_text("Rate limited")
    expect(alert).to_contain_text("Try again in")
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
    # Nothing was stored: the text waits in the composer, no message was left shown.
    expect(page.get_by_label("Message", exact=True)).to_have_value("One too many")
    expect(user_messages(page)).to_have_count(REPLIES_PER_MINUTE)
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()
    assert len(stored(console, key, session_id)) == 2 * REPLIES_PER_MINUTE

    # Dismissed, the banner goes and the focus (on its button) goes back to the field.
    alert.get_by_role("button", name="Dismiss error").click()
    expect(alert).to_have_count(0)
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def test_a_failed_model_is_shown_and_retry_answers_the_stored_message_once(
    console: Console, open_page: OpenPage
) -> None:
    key = console.user("errors-model")
    session_id = console.session(key, unreachable_model(console))
    page = open_page()
    open_chat(page, console, key, session_id)

    send(page, "Are you there?")
    alert = conversation(page).get_by_role("alert")
    expect(alert).to_contain_text("The request failed")
    expect(alert).to_contain_text("model")
    retry = alert.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    # The message was stored before the model failed: it stays shown, without a reply.
    expect(user_messages(page).locator(".message-text")).to_have_text(["Are you there?"])
    expect(replies(page)).to_have_count(0)
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    # The stored message named the session.
    expect(conversation(page).get_by_role("heading", level=2)).to_have_text("Are you there?")
    history = stored(console, key, session_id)
    assert [(m["type"], m["content"]) for m in history] == [("USER", "Are you there?")]

    # The session gets a model that answers; the retry asks again for the same message.
    echo = next(
        config["id"]
        for config in console.gql(key, "{ modelConfigs { id provider isDefault } }")["modelConfigs"]
        if config["provider"] == "echo" and config["isDefault"]
    )
    console.gql(key, UPDATE_SESSION, {"id": session_id, "input": {"modelConfigId": echo}})
    retry.click()

    expect(alert).to_have_count(0)
    # The banner went with its button: the focus is in the field.
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    reply = replies(page).last
    expect(reply).to_have_attribute("data-finish-reason", "stop")
    expect(reply.locator(".message-text")).to_have_text("Echo: Are you there?")
    expect(user_messages(page)).to_have_count(1)
    history = stored(console, key, session_id)
    assert [(m["type"], m["content"]) for m in history] == [
        ("USER", "Are you there?"),
        ("AI", "Echo: Are you there?"),
    ]
    assert user_messages(page).get_attribute("data-message-id") == history[0]["id"]


# A turn that fails after its reader pressed "Stop": only the server's answer to that stop
# (the turn stopped before the model was asked: db/services/reply_runs.py) is quiet; any
# other error is shown with "Retry". The window for the first on a real server is a few
# milliseconds wide, so the page's Turn is given both answers directly.
TURN_FAILS_AFTER_STOP = """async (errors) => {
  const { Turn } = await import("/console/js/chat/turns.js");
  return errors.map((error) => {
    const outcome = { banner: null, retry: false };
    const session = {
      messages: { remove() {} },
      parts: { status: { textContent: "" } },
      turnEnded() {},
      showError(shown, retry) {
        outcome.banner = shown.message;
        outcome.retry = typeof retry === "function";
      },
    };
    const turn = new Turn(session, "send", {}, { content: "Hello" });
    turn.stopRequested = true;
    turn.fail(error);
    outcome.status = session.parts.status.textContent;
    return outcome;
  });
}"""


def test_only_the_stop_itself_is_quiet_when_a_stopped_turn_fails(
    console: Console, open_page: OpenPage
) -> None:
    *_, page = open_new_chat(console, open_page, "errors-stopped")
    stopped = f"{STOP_REQUESTED} before the model replied"  # as db.errors.ReplyStopped says
    outcomes = page.evaluate(
        TURN_FAILS_AFTER_STOP,
        [
            {"code": "INTERNAL_SERVER_ERROR", "message": stopped},
            {"code": "INTERNAL_SERVER_ERROR", "message": "the AI model failed to reply"},
            {"code": "RATE_LIMITED", "message": "Too many replies"},
        ],
    )
    assert outcomes == [
        {"banner": None, "retry": False, "status": "Stopped before the reply began"},
        {"banner": "the AI model failed to reply", "retry": True, "status": "The reply failed"},
        {"banner": "Too many replies", "retry": True, "status": "The reply failed"},
    ]


def test_an_export_that_fails_after_another_session_opened_is_not_shown_there(
    console: Console, open_page: OpenPage, page_problems: PageProblems
) -> None:
    key = console.user("errors-export")
    exported = console.session(key)
    console.gql(key, UPDATE_SESSION, {"id": exported, "input": {"title": "Exported"}})
    opened = console.session(key)
    console.gql(key, UPDATE_SESSION, {"id": opened, "input": {"title": "Opened next"}})
    page = open_page()
    page_problems.expect("status of 500")
    held: list[Route] = []  # the first export, answered when the test says

    def route(handled: Route) -> None:
        if held:
            handled.fulfill(**EXPORT_FAILED)
        else:
            held.append(handled)

    page.route(EXPORT_URL, route)
    open_chat(page, console, key, exported)
    heading = conversation(page).get_by_role("heading", level=2)
    expect(heading).to_have_text("Exported")

    export = page.get_by_role("button", name="Export Markdown")
    export.click()
    expect(export).to_have_attribute("aria-disabled", "true")  # on its way
    session_link(page, "Opened next").click()
    expect(heading).to_have_text("Opened next")
    assert len(held) == 1
    held[0].fulfill(**EXPORT_FAILED)
    # The export is over (the button is free again): its error was not this session's.
    expect(export).not_to_have_attribute("aria-disabled", "true")
    alert = conversation(page).get_by_role("alert")
    expect(alert).to_have_count(0)

    # An export of the session shown that fails says so, with "Retry".
    export.click()
    expect(alert).to_contain_text("The export broke")
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
