"""Forward Relay pagination of sessions and logs, newest first, and the logs' filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.models import LogLevel
from tests.factories import Account, make_log
from tests.schema.gql import new_session, ok

SESSIONS = """
query($first: Int, $after: String) { sessions(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { id } } } }"""
LOGS = """
query($first: Int, $after: String, $level: LogLevel, $start: DateTime, $end: DateTime) {
  logs(first: $first, after: $after, level: $level, startTime: $start, endTime: $end) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { message level createdAt } } } }"""
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def walk(
    client: httpx.AsyncClient, who: Account, document: str, field: str, **args: Any
) -> tuple[list[list[dict[str, Any]]], list[tuple[bool, bool]], int]:
    """Every page of a list, following endCursor: nodes, (previous, next) flags, totalCount."""
    pages: list[list[dict[str, Any]]] = []
    page_flags: list[tuple[bool, bool]] = []
    totals: set[int] = set()
    after = None
    while True:
        connection = (await ok(client, document, who, {**args, "after": after}))[field]
        info = connection["pageInfo"]
        pages.append([edge["node"] for edge in connection["edges"]])
        page_flags.append((info["hasPreviousPage"], info["hasNextPage"]))
        totals.add(connection["totalCount"])
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    [total] = totals
    return pages, page_flags, total


async def test_sessions_forward_newest_first(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    created = [await new_session(client, alice) for _ in range(5)]
    await new_session(client, bob)

    pages, page_flags, total = await walk(client, alice, SESSIONS, "sessions", first=2)

    assert [[node["id"] for node in nodes] for nodes in pages] == [
        created[4:2:-1],
        created[2:0:-1],
        created[:1],
    ]
    assert page_flags == [(False, True), (True, True), (True, False)]
    assert total == 5
    empty = (await ok(client, SESSIONS, alice, {"first": 0}))["sessions"]
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True
    assert empty["pageInfo"]["startCursor"] is None and empty["totalCount"] == 5


async def make_logs() -> list[str]:
    """Six entries an hour apart, oldest first: info, warning, error, info, warning, error."""
    levels = [LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR] * 2
    for hour, level in enumerate(levels):
        await make_log(f"entry {hour}", at=T0 + timedelta(hours=hour), level=level)
    return [f"entry {hour}" for hour in range(len(levels))]


async def test_logs_forward_newest_first(client: httpx.AsyncClient, admin: Account) -> None:
    messages = await make_logs()

    pages, page_flags, total = await walk(client, admin, LOGS, "logs", first=4)

    assert [[node["message"] for node in nodes] for nodes in pages] == [
        messages[:1:-1],
        messages[1::-1],
    ]
    assert page_flags == [(False, True), (True, False)]
    assert total == 6
    newest = pages[0][0]
    assert (newest["level"], newest["createdAt"]) == ("ERROR", "2026-03-01T17:00:00.000000+00:00")


async def test_logs_filters_with_pagination(client: httpx.AsyncClient, admin: Account) -> None:
    messages = await make_logs()
    start, end = (T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=4)).isoformat()

    def of(pages: list[list[dict[str, Any]]]) -> list[str]:
        return [node["message"] for nodes in pages for node in nodes]

    warnings, _, warning_total = await walk(client, admin, LOGS, "logs", first=1, level="WARNING")
    assert (of(warnings), warning_total) == ([messages[4], messages[1]], 2)
    window, _, window_total = await walk(client, admin, LOGS, "logs", first=3, start=start, end=end)
    assert (of(window), window_total) == (messages[4:0:-1], 4)  # both ends inclusive
    since, _, _ = await walk(client, admin, LOGS, "logs", start=start, level="ERROR")
    assert of(since) == [messages[5], messages[2]]
    until, _, _ = await walk(client, admin, LOGS, "logs", end=end, level="INFO")
    assert of(until) == [messages[3], messages[0]]


@pytest.mark.parametrize(
    "start",
    ["2026-03-01T13:00:00", "2026-03-01T13:00:00+00:00", "2026-03-01T14:00:00+01:00"],
)
async def test_logs_read_a_time_without_an_offset_as_utc(
    client: httpx.AsyncClient, admin: Account, start: str
) -> None:
    """As the REST door does: the rule is the service's, not either door's."""
    messages = await make_logs()

    pages, _, total = await walk(client, admin, LOGS, "logs", start=start)

    assert [node["message"] for nodes in pages for node in nodes] == messages[:0:-1]
    assert total == 5
