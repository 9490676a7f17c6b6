"""The in-process broker: fan-out to a topic's subscribers, bounded per subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db.events import MISSED_KIND, InProcessBroker, SubscriberTooSlow, session_topic


async def next_event(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(1):
        return await anext(events)


async def test_every_subscriber_of_a_topic_receives_its_events_in_order() -> None:
    broker = InProcessBroker()
    async with broker.subscribe("t") as one, broker.subscribe("t") as two:
        for n in range(3):
            await broker.publish("t", {"n": n})

        assert [(await next_event(one))["n"] for _ in range(3)] == [0, 1, 2]
        assert [(await next_event(two))["n"] for _ in range(3)] == [0, 1, 2]


async def test_a_subscriber_receives_only_its_own_topic() -> None:
    broker = InProcessBroker()
    async with broker.subscribe(session_topic("a")) as a:
        await broker.publish(session_topic("b"), {"for": "b"})
        await broker.publish(session_topic("a"), {"for": "a"})

        assert await next_event(a) == {"for": "a"}


async def test_a_subscriber_receives_only_events_published_after_it_joined() -> None:
    broker = InProcessBroker()
    async with broker.subscribe("t") as early:
        await broker.publish("t", {"n": 0})
        async with broker.subscribe("t") as late:
            await broker.publish("t", {"n": 1})

            assert await next_event(late) == {"n": 1}
        assert [await next_event(early) for _ in range(2)] == [{"n": 0}, {"n": 1}]


async def test_publishing_to_a_topic_without_subscribers_is_fine() -> None:
    broker = InProcessBroker(capacity=1)
    for n in range(5):
        await broker.publish("nobody", {"n": n})
    assert broker.subscriber_count("nobody") == 0

    # Nothing was kept for a later subscriber either.
    async with broker.subscribe("nobody") as events:
        await broker.publish("nobody", {"n": "new"})
        assert await next_event(events) == {"n": "new"}


async def test_subscriber_count_follows_joins_and_leaves() -> None:
    broker = InProcessBroker()
    async with broker.subscribe("t"):
        assert broker.subscriber_count("t") == 1
        async with broker.subscribe("t"):
            assert broker.subscriber_count("t") == 2
        assert broker.subscriber_count("t") == 1
    assert broker.subscriber_count("t") == 0
    await broker.publish("t", {"n": 1})


async def test_each_subscriber_gets_its_own_copy_of_an_event() -> None:
    broker = InProcessBroker()
    event = {"n": 1}
    async with broker.subscribe("t") as one, broker.subscribe("t") as two:
        await broker.publish("t", event)
        first = await next_event(one)
        first["n"] = 99

        assert await next_event(two) == {"n": 1}
    assert event == {"n": 1}


async def test_a_subscriber_that_falls_behind_gets_subscriber_too_slow_and_others_do_not() -> None:
    broker = InProcessBroker(capacity=2)
    async with broker.subscribe("t") as slow, broker.subscribe("t") as keeping_up:
        received = []
        for n in range(5):
            await broker.publish("t", {"n": n})
            received.append(await next_event(keeping_up))

        # What was queued before it fell behind, then the error instead of a gap.
        assert [await next_event(slow) for _ in range(2)] == [{"n": 0}, {"n": 1}]
        with pytest.raises(SubscriberTooSlow):
            await next_event(slow)

        assert received == [{"n": n} for n in range(5)]
        await broker.publish("t", {"n": 5})
        assert await next_event(keeping_up) == {"n": 5}


async def test_a_subscriber_within_its_bound_loses_nothing() -> None:
    broker = InProcessBroker(capacity=3)
    async with broker.subscribe("t") as events:
        for n in range(3):
            await broker.publish("t", {"n": n})

        assert [await next_event(events) for _ in range(3)] == [{"n": n} for n in range(3)]
        await broker.publish("t", {"n": 3})
        assert await next_event(events) == {"n": 3}


async def test_announce_missed_reaches_every_subscriber_of_every_topic_after_earlier_events() -> (
    None
):
    broker = InProcessBroker()
    async with (
        broker.subscribe("a") as a,
        broker.subscribe("a") as a_again,
        broker.subscribe("b") as b,
    ):
        await broker.publish("a", {"n": 1})
        broker.announce_missed()
        await broker.publish("b", {"n": 2})

        assert [await next_event(a) for _ in range(2)] == [{"n": 1}, {"kind": MISSED_KIND}]
        assert [await next_event(a_again) for _ in range(2)] == [{"n": 1}, {"kind": MISSED_KIND}]
        assert [await next_event(b) for _ in range(2)] == [{"kind": MISSED_KIND}, {"n": 2}]


async def test_announce_missed_to_a_full_subscriber_ends_it_as_too_slow() -> None:
    broker = InProcessBroker(capacity=1)
    async with broker.subscribe("t") as events:
        await broker.publish("t", {"n": 0})
        broker.announce_missed()

        assert await next_event(events) == {"n": 0}
        with pytest.raises(SubscriberTooSlow):
            await next_event(events)


async def test_announce_missed_without_subscribers_is_fine() -> None:
    InProcessBroker().announce_missed()
