"""ASGI middleware of the whole app: every request body is read whole before a door runs.

Reading it here, once, for both doors means no handler or parsing library ever waits on a
client: a body over the size limit, one that never arrives (a `Content-Length` larger than
what is sent) or a client that hangs up mid-body is answered, or dropped, right here, in the
shape of the door the request was for, and never reaches the exception handlers.
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


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _ClientGone(Exception):
    pass


class RequestBody:
    """Buffer request bodies up to `max_bytes`, arriving within `timeout` seconds."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

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
            body = await self._read(declared, receive)
        except _Refused as refused:
            await self._refuse(scope, receive, send, refused)
            return
        except _ClientGone:
            logger.info("client went away while sending %s %s", scope["method"], scope["path"])
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:  # later calls wait for the disconnect, as streaming answers do
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, declared: bytes | None, receive: Receive) -> bytes:
        if declared is not None:
            if not declared.isdigit():
                raise _Refused(400, "Content-Length header is not a number")
            if int(declared) > self.max_bytes:
                await self._drain(receive, received=0, declared=int(declared))
                raise _Refused(413, self._too_large)
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
                raise _Refused(413, self._too_large)
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
            raise _Refused(
                400,
                f"request body incomplete: {received} bytes{expected} arrived "
                f"within {self.timeout:g} s",
            ) from None
        if message["type"] == "http.disconnect":
            raise _ClientGone
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
        except (_Refused, _ClientGone):
            return

    @property
    def _too_large(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refused: _Refused) -> None:
        response = refusal(
            scope["path"],
            refused.status,
            f"body: {refused.reason}",
            field="body",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
