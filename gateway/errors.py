"""The app's exception handlers: each error answered in the shape of the door it came to.

Service errors map through each door's one table (`gateway.rest.envelope.STATUS_OF`,
`schema.errors.CODE_OF`); these handlers catch what escapes a door's own handling.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db import request_context
from db.errors import Invalid, RateLimited, ServiceError
from db.services import logs
from gateway import graphql
from gateway.rest.envelope import QUOTA_KEY, failure, quota_headers, status_of
from schema.errors import code_of

logger = logging.getLogger("gateway")

_HTTP_MESSAGES = {404: "route not found", 405: "method not allowed"}
# The statuses the REST contract knows; another client error is a 400 there.
_REST_STATUSES = frozenset({400, 401, 403, 404, 405, 429, 500})


def refusal(
    path: str,
    status: int,
    message: str,
    *,
    field: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after: int | None = None,
) -> Response:
    """An error answer shaped for the door serving `path`: GraphQL errors or the envelope."""
    if path == graphql.PATH:
        named = {"code": code, "field": field, "retryAfter": retry_after}
        extensions = {key: value for key, value in named.items() if value is not None}
        return graphql.failure(status, message, extensions=extensions, headers=headers)
    if status not in _REST_STATUSES:
        status = 400 if status < 500 else 500
    return failure(status, message, headers=headers)


async def service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    quota = request.scope.get(QUOTA_KEY)  # an authenticated REST request's standing
    if quota is not None:
        headers.update(quota_headers(quota))
    field = exc.field if isinstance(exc, Invalid) else None
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    return refusal(
        request.url.path,
        status,
        str(exc),
        field=field,
        code=code_of(exc),
        headers=headers,
        retry_after=retry_after,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return refusal(request.url.path, exc.status_code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method of the path: Starlette names only the first route's (GET, not also POST)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: a reference the operator can find, nothing internal shown."""
    reference = request_context.current() or uuid.uuid4().hex[:12]  # the request id
    logger.error(
        "internal error %s on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    logs.record_internal_error(
        reference=reference,
        where=f"on {request.method} {request.url.path}",
        exception=type(exc).__name__,
    )
    message = f"internal server error (reference {reference})"
    return refusal(request.url.path, 500, message)


class InternalErrors:
    """ASGI middleware: an unexpected exception of an HTTP request is answered here with
    `internal_error` and goes no further.

    Starlette's own catch-all (ServerErrorMiddleware, where an `Exception` handler is
    installed) answers and then re-raises for the server to log; uvicorn then closes the
    keep-alive connection just after the 500, and a client that already sent its next
    request on it gets a transport error instead of an answer: each request failing while
    the database is away could cost the next one too. The handler logs the traceback
    with its reference already. An exception after the answer has started still goes up
    (that answer is broken; its connection must close).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            response = await internal_error(Request(scope, receive), exc)
            await response(scope, receive, send)


EXCEPTION_HANDLERS = {
    ServiceError: service_error,
    HTTPException: http_error,
    Exception: internal_error,
}
