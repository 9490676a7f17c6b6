"""The PostgreSQL broker: events reach every process through one listening connection each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise import connections

from db.events import MISSED_KIND
from db.models import EventPayload
from db.pg_events import CHANNEL, MAX_NOTIFY_BYTES, PostgresBroker
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="LISTEN/NOTIFY is PostgreSQL's")


@pytest.fixture
async def brokers(app: Starlette, database_url: str) -> AsyncIterator[list[PostgresBroker]]:
    """Two brokers, as two processes would have; the app's ORM publishes for both."""
    started = [PostgresBroker(database_url), PostgresBroker(database_url)]
    for broker in started:
        await broker.start()
    try:
        yield started
    finally:
        for broker in started:
            await broker.aclose()


async def next_event(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(10):
        return await anext(events)


async def listening_connections() -> int:
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND query = $1",
        [f'LISTEN "{CHANNEL}"'],
    )
    return int(rows[0]["n"])


async def test_an_event_published_by_one_process_reaches_the_subscribers_of_every_process(
    brokers: list[PostgresBroker],
) -> None:
    one, two = brokers
    async with one.subscribe("t") as mine, two.subscribe("t") as theirs:
        await one.publish("t", {"kind": "hello", "n": 1})

        assert await next_event(mine) == {"kind": "hello", "n": 1}
        assert await next_event(theirs) == {"kind": "hello", "n": 1}


async def test_each_process_listens_on_one_connection_however_many_subscribe(
    app: Starlette, brokers: list[PostgresBroker]
) -> None:
    before = await listening_connections()  # the app's own broker and these two
    one, _ = brokers
    subscriptions = [one.subscribe(f"topic {n}") for n in range(20)]
    for subscription in subscriptions:
        await subscription.__aenter__()
    try:
        assert await listening_connections() == before == 3
    finally:
        for subscription in subscriptions:
            await subscription.__aexit__(None, None, None)


async def test_events_keep_their_order(brokers: list[PostgresBroker]) -> None:
    one, two = brokers
    async with two.subscribe("t") as events:
        for n in range(50):
            await one.publish("t", {"n": n})

        assert [(await next_event(events))["n"] for _ in range(50)] == list(range(50))


async def test_an_event_too_big_for_notify_is_fetched_by_id(
    brokers: list[PostgresBroker],
) -> None:
    one, two = brokers
    big = {"kind": "big", "text": "é" * MAX_NOTIFY_BYTES}  # twice as many bytes in UTF-8
    async with two.subscribe("t") as events:
        await one.publish("t", big)
        await one.publish("t", {"kind": "small"})

        assert await next_event(events) == big
        assert await next_event(events) == {"kind": "small"}
    assert await EventPayload.all().count() == 1


async def test_a_lost_listener_reconnects_and_subscribers_learn_events_were_missed(
    brokers: list[PostgresBroker],
) -> None:
    one, two = brokers
    async with two.subscribe("t") as events:
        await connections.get("default").execute_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()",
            [f'LISTEN "{CHANNEL}"'],
        )

        # Told once when the connection goes, once more when it listens again.
        assert (await next_event(events))["kind"] == MISSED_KIND
        assert (await next_event(events))["kind"] == MISSED_KIND
        assert two.reconnects == 1
        await one.publish("t", {"kind": "after"})
        assert await next_event(events) == {"kind": "after"}
