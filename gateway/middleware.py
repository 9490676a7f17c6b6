"""ASGI middleware of the whole app."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies above `max_bytes`, declared or streamed, before they are buffered."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(scope, send, "Content-Length header is not a number")
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, send, self._too_large)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, send, self._too_large)

    @property
    def _too_large(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, send: Send, reason: str) -> None:
        body: dict[str, Any]
        if scope["path"].startswith("/graphql"):
            status = 413
            body = {"errors": [{"message": reason, "extensions": {"code": "BAD_USER_INPUT"}}]}
        else:
            status = 400
            body = {"code": 400, "message": f"body: {reason}", "data": None}
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
