"""The REST send as server-sent events, read event by event as the bytes arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.factories import Account

MEDIA_TYPE = "text/event-stream"
WAIT_SECONDS = 10.0  # how long one event may take to arrive; never asserted on


@dataclass(frozen=True)
class Event:
    name: str
    data: Any
    id: str | None = None  # the `id:` field, if the event has one


class EventReader:
    """The events of one streaming response; `raw` keeps every line received."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.raw: list[str] = []
        self._lines = response.aiter_lines()

    async def next(self) -> Event:
        """The next event; fails if the stream ends or nothing comes for WAIT_SECONDS."""
        event = await self._read()
        assert event is not None, f"the stream ended; it sent {self.raw}"
        return event

    async def rest(self) -> list[Event]:
        """Every event until the server ends the body."""
        events: list[Event] = []
        while (event := await self._read()) is not None:
            events.append(event)
        return events

    async def _read(self) -> Event | None:
        name, data, event_id = "message", list[str](), None
        async with asyncio.timeout(WAIT_SECONDS):
            async for line in self._lines:
                self.raw.append(line)
                if not line:
                    if data:
                        return Event(name, json.loads("\n".join(data)), event_id)
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = value
        assert not data, f"the stream ended inside an event: {self.raw}"
        return None


@asynccontextmanager
async def streamed_send(
    http: httpx.AsyncClient,
    account: Account,
    session_id: str,
    message: str = "hello",
    *,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[EventReader]:
    """POST a message asking for events; leaving the block closes the connection."""
    request_headers = {**account.headers, "Accept": MEDIA_TYPE, **(headers or {})}
    body = {"user_id": account.user_id, "message": message}
    url = f"/api/v1/sessions/{session_id}/messages"
    async with http.stream("POST", url, json=body, headers=request_headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"HTTP {response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith(MEDIA_TYPE), response.headers
        yield EventReader(response)


@asynccontextmanager
async def resumed_stream(
    http: httpx.AsyncClient,
    account: Account,
    session_id: str,
    message_id: str,
    *,
    last_event_id: str | None = None,
) -> AsyncIterator[EventReader]:
    """GET a reply's stream again, from `Last-Event-ID` if given."""
    headers = {**account.headers, "Accept": MEDIA_TYPE}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    url = f"/api/v1/sessions/{session_id}/messages/{message_id}/stream"
    async with http.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"HTTP {response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith(MEDIA_TYPE), response.headers
        yield EventReader(response)


def names(events: list[Event]) -> list[str]:
    """Event names with runs of deltas collapsed: ["user_message", "delta", ...]."""
    collapsed: list[str] = []
    for event in events:
        if not (event.name == "delta" and collapsed and collapsed[-1] == "delta"):
            collapsed.append(event.name)
    return collapsed
