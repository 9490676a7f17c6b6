"""The /graphql endpoint: strawberry's ASGI view, our context, credentials and GraphiQL.

Requests strawberry refuses before execution (a body that is not JSON, a wrong content
type, a `query` that is not a string) are answered as GraphQL errors with a code, like
every other answer of this door, rather than as strawberry's plain-text bodies.

A WebSocket subscriber that stops reading is cut off: when a send to it does not complete
within GRAPHQL_WS_SEND_TIMEOUT (10 s by default), or one of its
subscriptions falls so far behind that the broker dropped events for it
(SubscriberTooSlow), the connection is closed with 1008 "subscriber too slow" and its
operations end at once; other connections never wait on it. See SlowSubscriberGuard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.types import QueryParams

from db.errors import Invalid
from db.events import SubscriberTooSlow
from db.identity import Caller
from db.ports import EventBroker, Runtime
from gateway import json_input
from gateway.auth import authenticate
from gateway.request_info import note_operation
from gateway.security_headers import page_csp
from schema import CompiledReads, GraphQLLimits, build_compiled_reads, build_schema
from schema.context import Context

logger = logging.getLogger("gateway.graphql")

PATH = "/graphql"
# Where the compiled reads' lane (gateway.fast_reads) leaves the outcome of authenticating
# a request it then left to Strawberry: the Caller, or the refusal to raise again.
CALLER_KEY = "gateway.graphql.caller"
INTERNAL = "INTERNAL_SERVER_ERROR"
GRAPHIQL_PAGE = Path(__file__).with_name("graphiql.html")
# The code of an error answered before any operation runs, by HTTP status.
CODE_OF_STATUS = {
    400: "BAD_USER_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BAD_USER_INPUT",
    415: "BAD_USER_INPUT",
}


def failure(
    status: int,
    message: str,
    *,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A request-level GraphQL error (no `data`: no operation ran), coded by its status
    unless `extensions` name the code."""
    body = {
        "errors": [
            {
                "message": message,
                "extensions": {"code": CODE_OF_STATUS.get(status, INTERNAL), **(extensions or {})},
            }
        ]
    }
    # json.dumps, not orjson: a message quoting client input can never fail to encode.
    return JSONResponse(body, status_code=status, headers=headers)


async def _authenticate(context: Context) -> Caller:
    """Credentials from the `connection_init` payload, else from the request's headers
    (unless the compiled path authenticated this request already)."""
    known = getattr(context.request, "scope", {}).get(CALLER_KEY)
    if isinstance(known, Caller):
        return known
    if isinstance(known, Exception):
        raise known
    headers: Mapping[str, str] = context.request.headers
    params = context.connection_params
    if isinstance(params, Mapping):
        token = next(
            (v for k, v in params.items() if k.lower() == "authorization" and isinstance(v, str)),
            None,
        )
        if token is not None:
            headers = {"authorization": token}
    return await authenticate(headers, source="graphql")


# The members of a subscription message's payload and the JSON types they may have.
_PAYLOAD_MEMBERS = {
    "query": (str,),
    "variables": (dict, type(None)),
    "operationName": (str, type(None)),
    "extensions": (dict, type(None)),
}


def _check_message(message: Any) -> None:
    """A graphql-transport-ws / graphql-ws message: an object with a string `type`, whose
    `payload`, if any, is an object (with a string `query` when it starts an operation)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Invalid("must be a JSON object with a string type", field="message")
    payload = message.get("payload")
    starts = message["type"] in ("subscribe", "start")
    if (starts or payload is not None) and not isinstance(payload, dict):
        raise Invalid("must be a JSON object", field="payload")
    if starts:
        assert isinstance(payload, dict)
        for name, types in _PAYLOAD_MEMBERS.items():
            if not isinstance(payload.get(name), types):
                raise Invalid(f"has the wrong type for {name}", field="payload")


# The close code of a subscriber cut off for not reading. graphql-transport-ws defines none
# for this, and each of its own 44xx codes means something else (4408 is "Connection
# initialisation timeout", 4429 "Too many initialisation requests"), so it is RFC 6455's
# 1008 Policy Violation, the generic code for a peer that broke the server's rules; the
# reason says which. graphql-ws clients do not reconnect by themselves after a 1008 (they
# do after a 1006 or a 1013), which is what a client that lost events needs: to read the
# history again before it subscribes anew. The legacy graphql-ws protocol gets the same.
SLOW_SUBSCRIBER_CODE = 1008
SLOW_SUBSCRIBER_REASON = "subscriber too slow"
# The longest one send to a WebSocket (the close frame included) may wait for the client.
WS_SEND_TIMEOUT = 10.0
# Where a WebSocket's scope carries its guard, for the context of its operations.
_GUARD_KEY = "gateway.slow_subscriber_guard"


class SlowSubscriberGuard:
    """One WebSocket connection's ASGI `receive` and `send`, with every send bounded.

    A client that stops reading fills the socket's buffers, after which uvicorn holds each
    send, the close included, until the client reads again: without a bound, the
    connection's operations would wait forever while their events pile up. Once the guard
    cuts the connection off, sends are dropped and `receive` reports a disconnect, so
    strawberry's handler ends every operation as if the client had left (their broker
    subscriptions and queued events go with them); `close` then sends the close frame, which
    the client reads after what it had not read yet.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send, *, send_timeout: float) -> None:
        self._client = scope.get("client")
        self._receive = receive
        self._send = send
        self._send_timeout = send_timeout
        self._cut = asyncio.Event()
        self._ended = asyncio.Event()
        self._close_frame_due = False

    def cut_off(self, why: str) -> None:
        """Close the connection as too slow (once; later calls change nothing)."""
        if self._cut.is_set():
            return
        logger.warning(
            'cutting off the WebSocket of %s with %d "%s": %s',
            _client_address(self._client),
            SLOW_SUBSCRIBER_CODE,
            SLOW_SUBSCRIBER_REASON,
            why,
        )
        self._close_frame_due = True
        self._cut.set()

    async def send(self, message: Message) -> None:
        if self._cut.is_set():
            return
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._send(message)
        except TimeoutError:
            # uvicorn was still waiting for the socket to drain; the client is not reading.
            self.cut_off(f"a send waited {self._send_timeout:g} s for the client to read")
        except (OSError, RuntimeError):
            # Closed under us: uvicorn raises OSError (ClientDisconnected) once the client
            # has gone, and RuntimeError for a message after it closed the socket itself
            # (a keepalive ping left unanswered). Nothing can be sent any more: end the
            # operations quietly, as when the client leaves, rather than as a crash.
            if message["type"] not in ("websocket.send", "websocket.close"):
                raise
            self._cut.set()

    async def receive(self) -> Message:
        if not self._cut.is_set():
            incoming = asyncio.ensure_future(self._receive())
            cut = asyncio.ensure_future(self._cut.wait())
            try:
                await asyncio.wait((incoming, cut), return_when=asyncio.FIRST_COMPLETED)
            finally:
                cut.cancel()
                received = incoming.done()
                if not received:
                    incoming.cancel()
            if received:
                return incoming.result()
        return {
            "type": "websocket.disconnect",
            "code": SLOW_SUBSCRIBER_CODE,
            "reason": SLOW_SUBSCRIBER_REASON,
        }

    async def close(self) -> None:
        """After the handler ended: the close frame of a cut-off, if one is due."""
        self._ended.set()
        if not self._close_frame_due:
            return
        # Bounded too: a client that never reads again gets no close frame, and its
        # socket is left to uvicorn, which closes it once the buffered bytes are read
        # (the operations and their events are gone already).
        with suppress(TimeoutError, OSError, RuntimeError):
            async with asyncio.timeout(self._send_timeout):
                await self._send(
                    {
                        "type": "websocket.close",
                        "code": SLOW_SUBSCRIBER_CODE,
                        "reason": SLOW_SUBSCRIBER_REASON,
                    }
                )

    async def wait_ended(self) -> None:
        await self._ended.wait()


def _client_address(client: Any) -> str:
    if isinstance(client, list | tuple) and len(client) == 2:
        return f"{client[0]}:{client[1]}"
    return "a client"


@dataclasses.dataclass(frozen=True)
class _CutOffOnOverflow:
    """The event broker as one WebSocket connection's operations see it.

    A subscription whose queue overflowed raises SubscriberTooSlow, which would reach the
    client as an internal error (and the log as a crash); here it cuts the connection off
    like a send that waited too long, and the operation ends with the connection.
    """

    broker: EventBroker
    guard: SlowSubscriberGuard

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        await self.broker.publish(topic, event)

    def sql_channel(self) -> str | None:
        return self.broker.sql_channel()

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        async with self.broker.subscribe(topic) as events:
            yield self._until_overflow(events)

    async def _until_overflow(
        self, events: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in events:
                yield event
        except SubscriberTooSlow:
            self.guard.cut_off("events for one of its subscriptions overflowed the queue")
            # The handler cancels this operation as it ends; should it not, end quietly.
            await self.guard.wait_ended()


class GraphQLEndpoint(GraphQL[Context, None]):
    def __init__(
        self,
        *,
        runtime: Runtime,
        limits: GraphQLLimits,
        ide: bool,
        ws_send_timeout: float = WS_SEND_TIMEOUT,
        fast_path: bool = False,
        plan_cache_size: int = 500,
        **kwargs: Any,
    ) -> None:
        schema = build_schema(limits)
        super().__init__(schema, graphql_ide="graphiql" if ide else None, **kwargs)
        self.runtime = runtime
        self.ws_send_timeout = ws_send_timeout
        # PostgreSQL only (the statements are PostgreSQL's): see schema.compiled.
        self.compiled: CompiledReads | None = (
            build_compiled_reads(schema, cache_size=plan_cache_size) if fast_path else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            guard = SlowSubscriberGuard(scope, receive, send, send_timeout=self.ws_send_timeout)
            try:
                await super().__call__({**scope, _GUARD_KEY: guard}, guard.receive, guard.send)
            finally:
                await guard.close()
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except Invalid as exc:  # from parse_json: the body or a query parameter
            named = {"field": exc.field} if exc.field is not None else None
            response = failure(400, str(exc), extensions=named)
        except HTTPException as exc:
            response = failure(exc.status_code, exc.reason)
        await response(scope, receive, send)

    def encode_json(self, data: object) -> str:
        """Compact UTF-8, as the compiled path writes answers (orjson; the standard
        library for what orjson refuses, integers past 64 bits)."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    def parse_json(self, data: str | bytes) -> Any:
        """HTTP bodies: problems become BAD_USER_INPUT naming where they are."""
        body = json_input.decode(data, max_depth=self.runtime.limits.max_json_depth)
        note_operation(body)
        if not isinstance(body, dict | list):  # a list: a batch, which strawberry refuses
            raise Invalid("must be a JSON object", field="body")
        return body

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET's `variables` and `extensions` are JSON documents of their own."""
        data: dict[str, Any] = dict(params)
        note_operation(data)
        for name in ("variables", "extensions"):
            if data.get(name):
                data[name] = json_input.decode(
                    data[name], max_depth=self.runtime.limits.max_json_depth, source=name
                )
        return data

    def decode_json(self, data: str | bytes) -> object:
        """WebSocket messages: one that is not acceptable JSON, or not shaped as the
        protocols say, closes the connection with 4400 (strawberry's handlers would fail
        on it with an internal error)."""
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        try:
            message = json_input.decode(data, max_depth=self.runtime.limits.max_json_depth)
            _check_message(message)
        except Invalid as exc:
            raise json.JSONDecodeError(str(exc), text, 0) from None
        return message

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        runtime = self.runtime
        guard = request.scope.get(_GUARD_KEY)
        if isinstance(guard, SlowSubscriberGuard):
            runtime = dataclasses.replace(runtime, events=_CutOffOnOverflow(runtime.events, guard))
        return Context(runtime=runtime, authenticate=_authenticate, request=request)

    @cached_property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_PAGE.read_text(encoding="utf-8")

    @cached_property
    def graphql_ide_csp(self) -> str:
        """The page's own Content-Security-Policy: exactly what it loads."""
        return page_csp(self.graphql_ide_html)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(
            self.graphql_ide_html, headers={"Content-Security-Policy": self.graphql_ide_csp}
        )
