"""The in-process event broker: one process, many subscribers, bounded memory.

Besides published events, a subscriber may receive `{"kind": "missed"}`: events may have
been lost (a cross-process broker lost its database connection), so whoever keeps state
from events should re-read it from the database.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

MISSED_KIND = "missed"


class SubscriberTooSlow(Exception):
    """A subscriber fell so far behind that events for it were dropped."""


class _Subscription:
    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=capacity)
        self.overflowed = False

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Silently skipping events would show a wrong conversation; end the stream instead.
            self.overflowed = True

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            if self.overflowed and self.queue.empty():
                raise SubscriberTooSlow("subscriber fell behind; events were dropped")
            yield await self.queue.get()


class InProcessBroker:
    """Fan-out of published events to the subscribers of this process."""

    def __init__(self, *, capacity: int = 1_000) -> None:
        self._capacity = capacity
        self._topics: defaultdict[str, set[_Subscription]] = defaultdict(set)

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        for subscription in tuple(self._topics.get(topic, ())):
            subscription.offer(dict(event))

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        subscription = _Subscription(self._capacity)
        self._topics[topic].add(subscription)
        try:
            yield subscription.events()
        finally:
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._topics[topic]

    def announce_missed(self) -> None:
        """Tell every subscriber of every topic that events may have been lost."""
        for subscribers in tuple(self._topics.values()):
            for subscription in tuple(subscribers):
                subscription.offer({"kind": MISSED_KIND})

    def sql_channel(self) -> None:
        """Events of this process only: nothing a database statement can reach."""
        return None

    def subscriber_count(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))


def session_topic(session_id: str) -> str:
    """The topic carrying `message_added` events of one chat session."""
    return f"session:{session_id}"
