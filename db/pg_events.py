"""The cross-process event broker on PostgreSQL LISTEN/NOTIFY.

Every process holds ONE listening connection (not one per subscriber) and fans what it
hears out to its own subscribers through an `InProcessBroker`. Publishing is a
`pg_notify` on the ORM's pool, so an event reaches every process, this one included, in
the order PostgreSQL commits the notifications.

NOTIFY payloads stop at 8,000 bytes: a bigger event is written to `event_payloads` and
the notification carries only its id; listeners read it back (and old rows are swept).
When the listening connection is lost (a database restart, a network cut) the broker
tells every subscriber that events may have been missed, reconnects by itself with
backoff, and says so again once it listens anew, since whatever was published in
between is gone.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import orjson
from tortoise import connections

from db.events import InProcessBroker
from db.models import EventPayload

logger = logging.getLogger(__name__)

CHANNEL = "chat_gateway_events"
# PostgreSQL refuses payloads of 8,000 bytes or more; leave room for the envelope.
MAX_NOTIFY_BYTES = 7_900
# A silent network can hide a dead connection: ask it this often whether it lives.
PING_EVERY_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 5.0
# Big payloads only need to outlive their delivery.
PAYLOAD_RETENTION = timedelta(minutes=5)
# Reconnecting to a database that is away costs it little: try at least this often.
MAX_RECONNECT_DELAY_SECONDS = 1.0


def connect_arguments(database_url: str) -> dict[str, Any]:
    """asyncpg.connect() keywords for a `postgres://user:password@host:port/db` URL."""
    parts = urlsplit(database_url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "database": parts.path.lstrip("/") or None,
    }


class PostgresBroker:
    """Implements `db.ports.EventBroker` for every process sharing one database."""

    def __init__(self, database_url: str, *, timeout: float = 10.0, capacity: int = 1_000) -> None:
        self._connect_arguments = connect_arguments(database_url) | {"timeout": timeout}
        self._local = InProcessBroker(capacity=capacity)
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._inbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0

    async def start(self) -> None:
        """Listen (the first connection must work: a wrong URL stops the start)."""
        await self._listen()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="event-listener"),
            asyncio.create_task(self._deliver(), name="event-delivery"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._drop_connection()

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        payload = orjson.dumps({"topic": topic, "event": dict(event)}).decode()
        if len(payload.encode()) > MAX_NOTIFY_BYTES:
            row = await EventPayload.create(body=payload)
            payload = orjson.dumps({"ref": row.id}).decode()
        await connections.get("default").execute_query(
            "SELECT pg_notify($1, $2)", [CHANNEL, payload]
        )

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        return self._local.subscribe(topic)

    def subscriber_count(self, topic: str) -> int:
        return self._local.subscriber_count(topic)

    def sql_channel(self) -> str:
        return CHANNEL

    async def sweep(self) -> int:
        """Delete big payloads every listener has had time to read; returns how many."""
        cutoff = datetime.now(UTC) - PAYLOAD_RETENTION
        return await EventPayload.filter(created_at__lt=cutoff).delete()

    async def _listen(self) -> None:
        connection = await asyncpg.connect(**self._connect_arguments)
        try:
            await connection.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            await connection.close()
            raise
        connection.add_termination_listener(self._on_termination)
        self._lost.clear()
        self._connection = connection

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        # Delivery resolves big payloads from the database: one task, so order is kept.
        self._inbox.put_nowait(payload)

    def _on_termination(self, connection: Any) -> None:
        if connection is self._connection:
            self._lost.set()

    async def _supervise(self) -> None:
        while True:
            try:
                await self._watch_once()
            except Exception:
                # Never stop listening for good: log it, then start over from a new connection.
                logger.exception("the event listener failed; reconnecting")
                self._lost.set()
                await asyncio.sleep(MAX_RECONNECT_DELAY_SECONDS)

    async def _watch_once(self) -> None:
        with suppress(TimeoutError):
            async with asyncio.timeout(PING_EVERY_SECONDS):
                await self._lost.wait()
        if not self._lost.is_set() and await self._alive():
            return
        logger.warning("lost the event listening connection; events may be missed")
        self._local.announce_missed()
        await self._drop_connection()
        await self._reconnect()
        self.reconnects += 1
        logger.info("listening for events again")
        # Whatever was published while we were away is gone: say so once more.
        self._local.announce_missed()

    async def _alive(self) -> bool:
        connection = self._connection
        if connection is None or connection.is_closed():
            return False
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                await connection.fetchval("SELECT 1")
        except Exception:
            return False
        return True

    async def _reconnect(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen()
                return
            except Exception as exc:
                logger.info("event listener cannot reconnect yet (%s); retrying", exc)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_RECONNECT_DELAY_SECONDS)

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with suppress(Exception):
                async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                    await connection.close()
            if not connection.is_closed():
                connection.terminate()

    async def _deliver(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                envelope = orjson.loads(payload)
                if "ref" in envelope:
                    row = await EventPayload.get_or_none(id=envelope["ref"])
                    if row is None:
                        raise LookupError(f"event payload {envelope['ref']} is gone")
                    envelope = orjson.loads(row.body)
                topic, event = envelope["topic"], envelope["event"]
            except Exception:
                # One unreadable event must not stop delivery; subscribers re-read state.
                logger.exception("could not read a published event")
                self._local.announce_missed()
                continue
            await self._local.publish(topic, event)
