"""BAD_USER_INPUT: what breaks a rule, with `extensions.field` naming the input, no log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.factories import Account, make_config
from tests.schema.gql import SEND, fails, new_session, ok, post

MESSAGES = """
query($s: ID!, $first: Int, $last: Int, $after: String, $before: String) {
  session(id: $s) { messages(first: $first, last: $last, after: $after, before: $before) {
    totalCount } } }"""
CREATE_CONFIG = """
mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"""
UPDATE_CONFIG = """
mutation($id: ID!, $input: UpdateModelConfigInput!) {
  updateModelConfig(id: $id, input: $input) { id } }"""


@pytest.fixture(autouse=True)
def nothing_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: bad input is the client's business, never an ERROR record."""
    yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


BAD_MESSAGES: dict[str, tuple[dict[str, Any], str]] = {
    "empty content": ({"content": ""}, "content"),
    "blank content": ({"content": " \n\t "}, "content"),
    "reused clientMessageId": ({"content": "other", "clientMessageId": "k"}, "clientMessageId"),
}


@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
async def test_bad_message(client: httpx.AsyncClient, alice: Account, case: str) -> None:
    session_id = await new_session(client, alice)
    first = {"sessionId": session_id, "content": "first", "clientMessageId": "k"}
    await ok(client, SEND, alice, {"input": first})
    values, field = BAD_MESSAGES[case]

    error = await fails(
        client, SEND, alice, {"input": {"sessionId": session_id, **values}}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    count_query = "query($s: ID!) { session(id: $s) { messageCount } }"
    count = await ok(client, count_query, alice, {"s": session_id})
    assert count["session"]["messageCount"] == 2  # nothing more stored


BAD_PAGES: dict[str, tuple[dict[str, Any], str]] = {
    "first: 101": ({"first": 101}, "first"),
    "first: -1": ({"first": -1}, "first"),
    "last: 101": ({"last": 101}, "last"),
    "last: -1": ({"last": -1}, "last"),
    "first and last": ({"first": 1, "last": 1}, "last"),
    "garbage after": ({"after": "%%%"}, "after"),
    "not json before": ({"before": "bm90IGpzb24"}, "before"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
async def test_bad_message_page(client: httpx.AsyncClient, alice: Account, case: str) -> None:
    session_id = await new_session(client, alice)
    arguments, field = BAD_PAGES[case]

    answer = await post(client, MESSAGES, alice, {"s": session_id, **arguments})

    error = answer.error()
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert error["path"] == ["session", "messages"]


async def test_first_above_100_on_every_list(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    for document, who in (
        ("{ sessions(first: 101) { totalCount } }", alice),
        ("{ logs(first: 101) { totalCount } }", admin),
    ):
        error = await fails(client, document, who, code="BAD_USER_INPUT")
        assert error["message"] == "first: must be between 0 and 100"


async def test_a_cursor_of_another_list_is_refused(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await new_session(client, alice)
    await new_session(client, alice)
    listed = await ok(client, "{ sessions(first: 1) { pageInfo { endCursor } } }", alice)
    session_cursor = listed["sessions"]["pageInfo"]["endCursor"]
    logs_query = "query($a: String) { logs(first: 1, after: $a) { totalCount } }"

    for document, who, variables in (
        (MESSAGES, alice, {"s": session_id, "after": session_cursor}),
        (logs_query, admin, {"a": session_cursor}),
    ):
        error = await fails(client, document, who, variables, code="BAD_USER_INPUT")
        assert error["extensions"]["field"] == "after"


async def test_a_bad_variable_value(client: httpx.AsyncClient, alice: Account) -> None:
    for document, variables in (
        ("query($n: Int) { sessions(first: $n) { totalCount } }", {"n": "ten"}),
        ("query($t: DateTime) { logs(startTime: $t) { totalCount } }", {"t": "yesterday"}),
        ("query($l: LogLevel) { logs(level: $l) { totalCount } }", {"l": "DEBUG"}),
    ):
        answer = await post(client, document, alice, variables)
        assert answer.data is None
        error = answer.error()
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("Variable '$")


async def test_an_unknown_provider(client: httpx.AsyncClient, admin: Account) -> None:
    config = await make_config()
    values = {"modelName": "m", "modelVersion": "1", "provider": "nope"}

    created = await fails(client, CREATE_CONFIG, admin, {"input": values}, code="BAD_USER_INPUT")
    updated = await fails(
        client,
        UPDATE_CONFIG,
        admin,
        {"id": str(config.id), "input": {"provider": "nope"}},
        code="BAD_USER_INPUT",
    )

    for error in (created, updated):
        assert error["extensions"]["field"] == "provider"
        assert "unknown provider 'nope'" in error["message"]
    configs = await ok(client, "{ modelConfigs { provider version } }", admin)
    assert configs["modelConfigs"] == [
        {"provider": "echo", "version": 1},
        {"provider": "echo", "version": 1},
    ]


async def test_an_update_that_changes_nothing(client: httpx.AsyncClient, admin: Account) -> None:
    config = await make_config()

    error = await fails(
        client, UPDATE_CONFIG, admin, {"id": str(config.id), "input": {}}, code="BAD_USER_INPUT"
    )

    assert error["extensions"]["field"] == "input"


async def test_a_time_range_that_ends_before_it_starts(
    client: httpx.AsyncClient, admin: Account
) -> None:
    query = "query($s: DateTime, $e: DateTime) { logs(startTime: $s, endTime: $e) { totalCount } }"
    times = {"s": "2026-01-02T00:00:00+00:00", "e": "2026-01-01T00:00:00+00:00"}

    error = await fails(client, query, admin, times, code="BAD_USER_INPUT")

    assert error["extensions"]["field"] == "startTime"
