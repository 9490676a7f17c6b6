"""Outermost ASGI middleware: a request id for every request, the access line, the counts.

Pure ASGI and cheap: one header scan, 16 random bytes, two context variables, and, after the
answer, a dictionary lookup per counter. The route is the matched template (the router
leaves it in the scope), never the raw path: a client can vary a path without end.

The compiled GraphQL reads' lane (gateway.fast_reads) runs in front of this middleware and
answers with the same parts: an `Observation` (the id, the context variables) and the app's
one `Observations` (the access line, the counts); a request it hands on keeps its
observation, which RequestObserver adopts.
"""

from __future__ import annotations

import logging
import os
import re
import time
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

# Methods counted by name; any other a client sends is counted as OTHER.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

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
    return os.urandom(16).hex()  # 32 hex digits, a quarter of uuid4().hex's cost


class Observation:
    """One request being observed: its id, what is learnt of it, when it began; the
    context variables that carry the id and the info are set until `close`."""

    __slots__ = ("_id_token", "_info_token", "header", "info", "started")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        rid = request_id(headers)
        self.header = (HEADER, rid.encode())
        self.info = RequestInfo(rid)
        self.started = time.perf_counter()
        self._info_token = CURRENT.set(self.info)
        self._id_token = REQUEST_ID.set(rid)

    def close(self) -> None:
        REQUEST_ID.reset(self._id_token)
        CURRENT.reset(self._info_token)


# Where an observation opened before RequestObserver (gateway.fast_reads) waits for it.
OPENED_KEY = "gateway.observation"


class Observations:
    """The access line and the counts of answered requests: one per app, shared by
    RequestObserver and by the compiled reads' lane, which answers before it."""

    def __init__(self, *, access_log: bool, metrics: bool) -> None:
        self.access_log = access_log
        self.counts = RequestCounts() if metrics else None

    def record(
        self, *, method: str, template: str, info: RequestInfo, status: int, seconds: float
    ) -> None:
        """One answered request: counted, and logged when the access log is on."""
        method = method if method in KNOWN_METHODS else "OTHER"
        if status >= 500:
            internal_errors.inc()
        if self.counts is not None:
            # A name is a client's word: only an authenticated caller's names take label
            # slots (an anonymous flood cannot use them up).
            named = info.operation if info.user_id is not None else None
            label = self.counts.graphql_route(named) if template == GRAPHQL_PATH else template
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


class RequestObserver:
    """Give each request (HTTP or WebSocket) an id, answer with it, log and count it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        observations: Observations,
        unobserved: Collection[str] = (),
    ) -> None:
        self.app = app
        self.observations = observations
        # Health checks and scrapes: neither logged nor counted.
        self.unobserved = frozenset(unobserved)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        # A request the compiled reads' lane took and then left to the app keeps its id.
        observation = scope.pop(OPENED_KEY, None) or Observation(scope["headers"])
        header = observation.header
        status = 500
        streaming = False

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
                route: BaseRoute | None = scope.get("route")
                self.observations.record(
                    method=scope["method"],
                    template=getattr(route, "path", None) or UNMATCHED,
                    info=observation.info,
                    status=status,
                    seconds=time.perf_counter() - observation.started,
                )
            observation.close()


def _is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False


def count_subscriptions(endpoint: GraphQL[Any, Any], *, max_tokens: int) -> None:
    """Keep `active_subscriptions` as the endpoint's schema runs subscriptions: `stream`
    (graphql-transport-ws, any operation type) and `subscribe` (legacy graphql-ws).
    `max_tokens` is GRAPHQL_MAX_TOKENS: the document is read before anyone is
    authenticated, so no further than Strawberry itself would read it."""
    schema = endpoint.schema
    stream, subscribe = schema.stream, schema.subscribe

    async def counted_stream(query: str | None, *args: Any, **kwargs: Any) -> Any:
        result = await stream(query, *args, **kwargs)
        operation_name = kwargs.get("operation_name")
        if isinstance(result, AsyncGenerator) and _is_subscription(
            query, operation_name, max_tokens
        ):
            return _counted(result)
        return result

    async def counted_subscribe(*args: Any, **kwargs: Any) -> Any:
        result = await subscribe(*args, **kwargs)
        if isinstance(result, AsyncGenerator):
            return _counted(result)
        return result  # refused before it started

    schema.stream = counted_stream  # type: ignore[method-assign]
    schema.subscribe = counted_subscribe  # type: ignore[method-assign]


def _is_subscription(query: str | None, operation_name: str | None, max_tokens: int) -> bool:
    """Whether the document's chosen operation is a subscription (False if it is invalid
    or longer than Strawberry accepts); short documents' answers are cached."""
    if not query:
        return False
    if len(query) > MAX_CACHED_QUERY_CHARS:
        return _read_operation_type(query, operation_name, max_tokens)
    return _cached_operation_type(query, operation_name, max_tokens)


# Documents longer than this are read each time rather than kept in the cache.
MAX_CACHED_QUERY_CHARS = 16_384


def _read_operation_type(query: str, operation_name: str | None, max_tokens: int) -> bool:
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
        operation = get_operation_ast(document, operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


_cached_operation_type = lru_cache(maxsize=256)(_read_operation_type)


async def _counted(events: AsyncGenerator[Any]) -> AsyncGenerator[Any]:
    active_subscriptions.inc()
    try:
        async with aclosing(events):
            async for event in events:
                yield event
    finally:
        active_subscriptions.dec()
