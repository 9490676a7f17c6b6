"""ASGI middleware of the whole app: every request body is read whole before a door runs.

Reading it here, once, for both doors means no handler or parsing library ever waits on a
client: a body over the size limit, one that never arrives (a `Content-Length` larger than
what is sent) or a client that hangs up mid-body is answered, or dropped, right here, in the
shape of the door the request was for, and never reaches the exception handlers.
The rule itself is `BodyReader`, which the compiled reads' lane (gateway.fast_reads) applies
to the requests it takes before this middleware runs.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import refusal

logger = logging.getLogger("gateway")

# A body declared too large is still read (and dropped) up to this many times the limit,
# so that a client that writes its whole request before reading gets our answer rather
# than a reset connection. Larger ones are answered at once and the connection closed.
DRAIN_FACTOR = 8


class BodyRefused(Exception):
    """A body this app does not take: answered with `status` and `reason` (`refuse`)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The client hung up before its body arrived whole."""


class BodyReader:
    """The rule for request bodies: up to `max_bytes`, arriving within `timeout` seconds."""

    def __init__(self, *, max_bytes: int, timeout: float) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, refused: BodyRefused
    ) -> None:
        """Answer a refused body in the shape of the door it was for, closing the connection."""
        response = refusal(
            scope["path"],
            refused.status,
            f"body: {refused.reason}",
            field="body",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def read(self, declared: bytes | None, receive: Receive) -> bytes:
        """The whole body; raises `BodyRefused` (answer it with `refuse`) or `ClientGone`."""
        if declared is not None:
            if not declared.isdigit():
                raise BodyRefused(400, "Content-Length header is not a number")
            if int(declared) > self.max_bytes:
                await self._drain(receive, received=0, declared=int(declared))
                raise BodyRefused(413, self._too_large)
        chunks: list[bytes] = []
        received = 0
        deadline = time.monotonic() + self.timeout
        more = True
        while more:
            message = await self._next(receive, deadline, received, declared)
            chunk = message.get("body", b"")
            received += len(chunk)
            more = message.get("more_body", False)
            if received > self.max_bytes:
                if more:
                    await self._drain(receive, received=received, declared=None)
                raise BodyRefused(413, self._too_large)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _next(
        self, receive: Receive, deadline: float, received: int, declared: bytes | None
    ) -> Message:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                message = await receive()
        except TimeoutError:
            expected = f" of the {int(declared)} announced" if declared is not None else ""
            raise BodyRefused(
                400,
                f"request body incomplete: {received} bytes{expected} arrived "
                f"within {self.timeout:g} s",
            ) from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        return message

    async def _drain(self, receive: Receive, *, received: int, declared: int | None) -> None:
        """Read and drop the rest of a too-large body, within bounds, before answering."""
        cap = DRAIN_FACTOR * self.max_bytes
        if declared is not None and declared > cap:
            return
        deadline = time.monotonic() + self.timeout
        try:
            while received <= cap:
                message = await self._next(receive, deadline, received, None)
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
        except (BodyRefused, ClientGone):
            return

    @property
    def _too_large(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"


class RequestBody:
    """Buffer request bodies as `BodyReader` says, and hand the app the whole body."""

    def __init__(self, app: ASGIApp, *, reader: BodyReader) -> None:
        self.app = app
        self.reader = reader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: nothing to wait for
            return
        try:
            body = await self.reader.read(declared, receive)
        except BodyRefused as refused:
            await self.reader.refuse(scope, receive, send, refused)
            return
        except ClientGone:
            logger.info("client went away while sending %s %s", scope["method"], scope["path"])
            return
        await self.app(scope, replaying(body, receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving `body` whole, then waiting on `receive` (for the disconnect, as
    streaming answers do)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
