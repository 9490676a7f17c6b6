"""Minimal clients of the two GraphQL WebSocket protocols, over the `websockets` library.

`TransportWS` speaks graphql-transport-ws (connection_init/ack, subscribe, next, error,
complete); `LegacyWS` speaks the legacy graphql-ws (connection_init/ack, start, data,
error, complete, stop). Both open a real socket to a real server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

WAIT = 10.0  # seconds any single message may take to arrive
Message = dict[str, Any]


class ProtocolClient:
    protocol: ClassVar[str]
    subscribe_type: ClassVar[str]
    stop_type: ClassVar[str]
    result_type: ClassVar[str]

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._stopped: set[str] = set()

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        init_payload: dict[str, Any] | None = None,
    ) -> AsyncIterator[ProtocolClient]:
        """Open, send connection_init (with `init_payload`) and wait for the ack."""
        async with connect(
            url,
            subprotocols=[Subprotocol(cls.protocol)],
            additional_headers=headers or {},
            open_timeout=WAIT,
            close_timeout=WAIT,
        ) as socket:
            assert socket.subprotocol == cls.protocol
            client = cls(socket)
            init: Message = {"type": "connection_init"}
            if init_payload is not None:
                init["payload"] = init_payload
            await client.send(init)
            ack = await client.receive()
            assert ack["type"] == "connection_ack", ack
            yield client

    async def send(self, message: Message) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self) -> Message:
        """The next protocol message, skipping keep-alives and those of stopped operations."""
        while True:
            async with asyncio.timeout(WAIT):
                raw = await self.socket.recv()
            message: Message = json.loads(raw)
            if message["type"] in ("ka", "ping", "pong") or message.get("id") in self._stopped:
                continue
            return message

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Start an operation; its id."""
        operation_id = str(next(self._ids))
        payload: Message = {"query": query, "variables": variables or {}}
        await self.send({"id": operation_id, "type": self.subscribe_type, "payload": payload})
        return operation_id

    async def stop(self, operation_id: str) -> None:
        """End an operation; whatever the server still sends for it is ignored."""
        self._stopped.add(operation_id)
        await self.send({"id": operation_id, "type": self.stop_type})

    async def next_result(self, operation_id: str) -> Message:
        """The next result payload ({data, errors?}) of an operation; fails on anything else."""
        message = await self.receive()
        assert message.get("id") == operation_id, message
        assert message["type"] == self.result_type, message
        payload: Message = message["payload"]
        return payload

    async def results(self, operation_id: str) -> list[Message]:
        """Every result payload of an operation until the server completes it."""
        payloads: list[Message] = []
        while True:
            message = await self.receive()
            assert message.get("id") == operation_id, message
            if message["type"] == "complete":
                return payloads
            assert message["type"] == self.result_type, message
            payloads.append(message["payload"])

    async def operation_errors(self, operation_id: str) -> list[Message]:
        """The errors an operation ends with, whichever message the server used to carry them.

        Errors before execution come as an `error` message; errors raised by a resolver
        as a result with `errors` (then `complete`).
        """
        message = await self.receive()
        assert message.get("id") == operation_id, message
        if message["type"] == "error":
            payload = message["payload"]
            errors: list[Message] = payload if isinstance(payload, list) else [payload]
            return errors
        assert message["type"] == self.result_type, message
        errors = message["payload"]["errors"]
        assert message["payload"].get("data") is None, message
        return errors


class TransportWS(ProtocolClient):
    protocol = "graphql-transport-ws"
    subscribe_type = "subscribe"
    stop_type = "complete"
    result_type = "next"


class LegacyWS(ProtocolClient):
    protocol = "graphql-ws"
    subscribe_type = "start"
    stop_type = "stop"
    result_type = "data"


PROTOCOLS: tuple[type[ProtocolClient], ...] = (TransportWS, LegacyWS)
