"""Outermost ASGI middleware: a request id for every request, the access line, the counts.

Pure ASGI and cheap: one header scan, one uuid, two context variables, and, after the
answer, a dictionary lookup per counter. The route is the matched template (the router
leaves it in the scope), never the raw path: a client can vary a path without end.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, Collection
from contextlib import aclosing
from functools import lru_cache
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from db.request_context import REQUEST_ID
from gateway.graphql import PATH as GRAPHQL_PATH
from gateway.metrics import RequestCounts, active_streams, active_subscriptions, internal_errors
from gateway.request_info import CURRENT, RequestInfo

access_logger = logging.getLogger("gateway.access")

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED = "unmatched"


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when sane (1-128 of [A-Za-z0-9._:-]), else a new one."""
    for name, value in headers:
        if name == HEADER:
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _SANE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class RequestObserver:
    """Give each request (HTTP or WebSocket) an id, answer with it, log and count it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool,
        metrics: bool,
        unobserved: Collection[str] = (),
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.counts = RequestCounts() if metrics else None
        # Health checks and scrapes: neither logged nor counted.
        self.unobserved = frozenset(unobserved)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        header = (HEADER, rid.encode())
        info = RequestInfo(rid)
        info_token = CURRENT.set(info)
        id_token = REQUEST_ID.set(rid)
        status = 500
        streaming = False
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status, streaming
            what = message["type"]
            if what == "http.response.start" or what == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", ()), header]}
                status = message.get("status", 101)
                streaming = _is_event_stream(message)
                if streaming:
                    active_streams.inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if streaming:
                active_streams.dec()
            if kind == "http" and scope["path"] not in self.unobserved:
                self._observed(scope, info, status, time.perf_counter() - started)
            REQUEST_ID.reset(id_token)
            CURRENT.reset(info_token)

    def _observed(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        route: BaseRoute | None = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"]
        if status >= 500:
            internal_errors.inc()
        if self.counts is not None:
            label = (
                self.counts.graphql_route(info.operation) if template == GRAPHQL_PATH else template
            )
            self.counts.observe(route=label, method=method, status=status, seconds=seconds)
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 2)
            operation = f" {info.operation}" if template == GRAPHQL_PATH and info.operation else ""
            access_logger.info(
                "%s %s%s %d %.2fms user=%s",
                method,
                template,
                operation,
                status,
                duration_ms,
                info.user_id or "-",
                extra={
                    "method": method,
                    "route": template,
                    "operation": info.operation if template == GRAPHQL_PATH else None,
                    "status": status,
                    "duration_ms": duration_ms,
                    "user_id": info.user_id,
                },
            )


def _is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False


def count_subscriptions(endpoint: GraphQL[Any, Any]) -> None:
    """Keep `active_subscriptions` as the endpoint's schema runs subscriptions: `stream`
    (graphql-transport-ws, any operation type) and `subscribe` (legacy graphql-ws)."""
    schema = endpoint.schema
    stream, subscribe = schema.stream, schema.subscribe

    async def counted_stream(query: str | None, *args: Any, **kwargs: Any) -> Any:
        result = await stream(query, *args, **kwargs)
        operation_name = kwargs.get("operation_name")
        if isinstance(result, AsyncGenerator) and _is_subscription(query, operation_name):
            return _counted(result)
        return result

    async def counted_subscribe(*args: Any, **kwargs: Any) -> Any:
        result = await subscribe(*args, **kwargs)
        if isinstance(result, AsyncGenerator):
            return _counted(result)
        return result  # refused before it started

    schema.stream = counted_stream  # type: ignore[method-assign]
    schema.subscribe = counted_subscribe  # type: ignore[method-assign]


@lru_cache(maxsize=256)
def _is_subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the document's chosen operation is a subscription (False if it is invalid)."""
    if not query:
        return False
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


async def _counted(events: AsyncGenerator[Any]) -> AsyncGenerator[Any]:
    active_subscriptions.inc()
    try:
        async with aclosing(events):
            async for event in events:
                yield event
    finally:
        active_subscriptions.dec()
