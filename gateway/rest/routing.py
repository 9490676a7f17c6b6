"""Endpoints declared once: the route table and the OpenAPI document both read them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.errors import Forbidden
from db.identity import Caller
from db.ports import Runtime
from db.services import auth_failures, rate_limits
from gateway.auth import authenticate
from gateway.rest.envelope import QUOTA_KEY, ok, quota_headers

Handler = Callable[[Request, Caller], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    # None: the 200 answer has only the `alternative_content` media types.
    response: type[BaseModel] | None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    admin_only: bool = False
    errors: tuple[int, ...] = (400, 401, 403, 404, 500)
    # Other media types the 200 answer may take (by the request's Accept header).
    alternative_content: dict[str, Any] = field(default_factory=dict)
    header_parameters: tuple[dict[str, Any], ...] = ()

    def route(self, prefix: str) -> Route:
        handler = self.handler
        # The route's template, not the path: any client can vary a path without end.
        source = f"{self.method} {prefix}{self.path}"

        async def endpoint(request: Request) -> Response:
            caller = await authenticate(request.headers, source=source)
            # Read at once: what authentication counted, before the handler awaits.
            quota = request.scope[QUOTA_KEY] = rate_limits.standing(caller)
            try:
                data = await handler(request, caller)
            except Forbidden as denied:
                auth_failures.note(
                    event=auth_failures.DENIED,
                    reason=denied.message,
                    source=source,
                    actor_id=caller.user_id,
                )
                raise
            response = data if isinstance(data, Response) else ok(data)
            if quota is not None:
                response.headers.update(quota_headers(quota))
            return response

        endpoint.__name__ = handler.__name__
        return Route(prefix + self.path, endpoint, methods=[self.method])


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
