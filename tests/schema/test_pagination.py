"""Relay pagination of a session's messages in both directions (keyset on the sequence)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account
from tests.schema.gql import new_session, ok, send_gql

PAGE = """
query($s: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  session(id: $s) { messages(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { content } }
  } }
}"""
SENDS = 5  # ten messages: q1, Echo: q1, ..., q5, Echo: q5
CONTENTS = [text for n in range(1, SENDS + 1) for text in (f"q{n}", f"Echo: q{n}")]


@pytest.fixture
async def session_id(client: httpx.AsyncClient, alice: Account) -> str:
    session = await new_session(client, alice)
    for n in range(1, SENDS + 1):
        await send_gql(client, alice, session, f"q{n}")
    return session


async def page(client: httpx.AsyncClient, who: Account, session: str, **args: Any) -> Any:
    data = await ok(client, PAGE, who, {"s": session, **args})
    connection = data["session"]["messages"]
    edges = connection["edges"]
    info = connection["pageInfo"]
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
    assert connection["totalCount"] == len(CONTENTS)
    return connection


def contents(connection: Any) -> list[str]:
    return [edge["node"]["content"] for edge in connection["edges"]]


def flags(connection: Any) -> tuple[bool, bool]:
    info = connection["pageInfo"]
    return info["hasPreviousPage"], info["hasNextPage"]


async def test_forward_oldest_first(
    client: httpx.AsyncClient, alice: Account, session_id: str
) -> None:
    seen: list[list[str]] = []
    seen_flags: list[tuple[bool, bool]] = []
    after = None
    while True:
        connection = await page(client, alice, session_id, first=3, after=after)
        seen.append(contents(connection))
        seen_flags.append(flags(connection))
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert seen == [CONTENTS[0:3], CONTENTS[3:6], CONTENTS[6:9], CONTENTS[9:]]
    assert seen_flags == [(False, True), (True, True), (True, True), (True, False)]


async def test_backward_from_the_newest(
    client: httpx.AsyncClient, alice: Account, session_id: str
) -> None:
    seen: list[list[str]] = []
    seen_flags: list[tuple[bool, bool]] = []
    before = None
    while True:
        connection = await page(client, alice, session_id, last=3, before=before)
        seen.append(contents(connection))
        seen_flags.append(flags(connection))
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]

    assert seen == [CONTENTS[7:], CONTENTS[4:7], CONTENTS[1:4], CONTENTS[:1]]
    assert seen_flags == [(True, False), (True, True), (True, True), (False, True)]


async def test_edges_of_the_list(
    client: httpx.AsyncClient, alice: Account, session_id: str
) -> None:
    everything = await page(client, alice, session_id, first=100)
    last_cursor = everything["pageInfo"]["endCursor"]
    first_cursor = everything["pageInfo"]["startCursor"]

    assert contents(everything) == CONTENTS and flags(everything) == (False, False)
    assert contents(await page(client, alice, session_id)) == CONTENTS  # default page: 20
    empty_first = await page(client, alice, session_id, first=0)
    assert (contents(empty_first), flags(empty_first)) == ([], (False, True))
    empty_last = await page(client, alice, session_id, last=0)
    assert (contents(empty_last), flags(empty_last)) == ([], (True, False))
    beyond = await page(client, alice, session_id, first=5, after=last_cursor)
    assert (contents(beyond), flags(beyond)) == ([], (True, False))
    before_start = await page(client, alice, session_id, last=5, before=first_cursor)
    assert (contents(before_start), flags(before_start)) == ([], (False, True))
    whole_back = await page(client, alice, session_id, last=100)
    assert contents(whole_back) == CONTENTS and flags(whole_back) == (False, False)


async def test_cursors_round_trip(
    client: httpx.AsyncClient, alice: Account, session_id: str
) -> None:
    everything = await page(client, alice, session_id, first=100)
    cursors = [edge["cursor"] for edge in everything["edges"]]

    assert len(set(cursors)) == len(cursors)
    assert not any(c.isdigit() for c in cursors)  # opaque, not the sequence numbers
    between = await page(client, alice, session_id, first=100, after=cursors[2], before=cursors[7])
    assert contents(between) == CONTENTS[3:7]
    backward = await page(client, alice, session_id, last=2, before=cursors[5])
    assert contents(backward) == CONTENTS[3:5]
    assert [e["cursor"] for e in backward["edges"]] == cursors[3:5]
    again = await page(client, alice, session_id, first=2, after=cursors[0])
    assert [e["cursor"] for e in again["edges"]] == cursors[1:3]


async def test_a_cursor_stays_put_while_the_session_grows(
    client: httpx.AsyncClient, alice: Account, session_id: str
) -> None:
    newest = await page(client, alice, session_id, last=3)
    before = newest["pageInfo"]["startCursor"]

    await send_gql(client, alice, session_id, "later")

    older = await ok(client, PAGE, alice, {"s": session_id, "last": 3, "before": before})
    connection = older["session"]["messages"]
    assert contents(connection) == CONTENTS[4:7]
    assert connection["totalCount"] == len(CONTENTS) + 2
    assert connection["pageInfo"]["hasNextPage"] is True
