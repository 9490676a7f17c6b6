"""A real Chat Completions server on loopback whose every answer the test scripts.

`FakeOpenAI` records each request (path, headers, JSON body, arrival time) and answers it
with the next scripted handler; the handlers below cover whole replies, errors with
Retry-After, server-sent event streams written piece by piece (see `frames`), stalls
and dropped connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WAIT_SECONDS = 5.0  # an upper bound for things that take milliseconds, never asserted on


@dataclass(frozen=True)
class Received:
    path: str
    headers: CIMultiDict[str]
    body: dict[str, Any]
    at: float  # the event loop's clock when the request arrived
    peer: tuple[str, int]  # the client's address: the same one means a reused connection


class FakeOpenAI:
    """Answers request n with the n-th scripted handler (the last one repeats)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: list[Handler] = []
        self._runner: web.AppRunner | None = None
        self._arrivals = asyncio.Condition()
        self.base_url = ""

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        # A short shutdown: a handler the test left waiting must not hold up the teardown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def script(self, *handlers: Handler) -> None:
        self._script = list(handlers)

    @property
    def open_connections(self) -> int:
        """TCP connections from clients that are open right now."""
        assert self._runner is not None and self._runner.server is not None
        return len(self._runner.server.connections)

    async def wait_for_requests(self, count: int) -> None:
        async with asyncio.timeout(WAIT_SECONDS), self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.received) >= count)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        loop = asyncio.get_running_loop()
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        headers = CIMultiDict(request.headers)
        self.received.append(Received(request.path, headers, body, loop.time(), peer))
        async with self._arrivals:
            self._arrivals.notify_all()
        index = min(len(self.received), len(self._script)) - 1
        assert index >= 0, "the test scripted no answer"
        return await self._script[index](request)


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds: a closed socket is seen a moment after the close
    call, and there is no event to wait on for it."""
    for _ in range(int(WAIT_SECONDS / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition(), f"still false after {WAIT_SECONDS} s"


# Answers -------------------------------------------------------------------------------


def completion(
    content: str = "Hello!",
    *,
    usage: tuple[int, int] | None = (12, 5),
    finish_reason: str = "stop",
    model: str = "gpt-fake-2024-01-01",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage is not None:
        payload["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return payload


def reply(content: str = "Hello!", **fields: Any) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(completion(content, **fields))

    return handler


def error(
    status: int,
    message: str = "upstream trouble",
    *,
    kind: str = "server_error",
    headers: Mapping[str, str] | None = None,
    echo_key: bool = False,
) -> Handler:
    """An OpenAI-style error; `echo_key` repeats the request's Authorization header in the
    message, as a careless server might."""

    async def handler(request: web.Request) -> web.StreamResponse:
        text = message
        if echo_key:
            text = f"{message} (you sent {request.headers.get('Authorization')})"
        payload = {"error": {"message": text, "type": kind, "code": status}}
        return web.json_response(payload, status=status, headers=headers)

    return handler


def raw(body: bytes, *, status: int = 200, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, content_type=content_type)

    return handler


def stream(
    pieces: Iterable[bytes | asyncio.Event], *, pause: float = 0.0, drop: bool = False
) -> Handler:
    """An event stream written piece by piece, each write sent before the pause; an Event
    among the pieces holds the stream until the test sets it. `drop` closes the connection
    after the last piece instead of ending the body."""
    parts = list(pieces)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in parts:
            if isinstance(part, asyncio.Event):
                await part.wait()
                continue
            await response.write(part)  # returns once the bytes are handed to the socket
            await asyncio.sleep(pause)
        if drop:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response

    return handler


def stalled(seconds: float, then: Handler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return handler


def held(gate: asyncio.Event, then: Handler) -> Handler:
    """Answers only once the test sets `gate`."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await gate.wait()
        return await then(request)

    return handler
