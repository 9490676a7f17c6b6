"""One table from service errors to REST statuses, and the app's exception handlers."""

from __future__ import annotations

import logging
import uuid

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from db.errors import Busy, Forbidden, Invalid, ModelFailed, NotFound, ServiceError, Unauthenticated
from db.models import LogLevel
from db.services import logs
from gateway.rest.envelope import failure

logger = logging.getLogger("gateway")

STATUS_OF: dict[type[ServiceError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Busy: 500,
    ModelFailed: 500,
}

_HTTP_MESSAGES = {404: "route not found", 405: "method not allowed"}


async def service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return failure(status, str(exc), headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return failure(exc.status_code, message, headers=headers)


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
    reference = uuid.uuid4().hex[:12]
    logger.error(
        "internal error %s on %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    await logs.record(
        level=LogLevel.ERROR,
        event="internal.error",
        message=f"internal error {reference} on {request.method} {request.url.path}",
        details={"reference": reference, "exception": type(exc).__name__},
    )
    return failure(500, f"internal server error (reference {reference})")


EXCEPTION_HANDLERS = {
    ServiceError: service_error,
    HTTPException: http_error,
    Exception: internal_error,
}
