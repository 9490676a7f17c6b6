"""The /api/v1 door: the six routes of the original design and their OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.rest import (
    exports,
    feedback,
    logs,
    messages,
    model_configs,
    search,
    sessions,
    usage,
)
from gateway.rest.envelope import EnvelopeResponse
from gateway.rest.openapi import document
from gateway.rest.routing import Endpoint, runtime_of

PREFIX = "/api/v1"
ENDPOINTS: list[Endpoint] = [
    *sessions.ENDPOINTS,
    *messages.ENDPOINTS,
    *feedback.ENDPOINTS,
    *model_configs.ENDPOINTS,
    *logs.ENDPOINTS,
    *exports.ENDPOINTS,
    *usage.ENDPOINTS,
    *search.ENDPOINTS,
]


async def openapi_json(request: Request) -> Response:
    runtime = runtime_of(request)
    return EnvelopeResponse(
        document(
            ENDPOINTS,
            prefix=PREFIX,
            limits=runtime.limits,
            providers=request.app.state.models.providers(),
        )
    )


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [endpoint.route(PREFIX) for endpoint in ENDPOINTS]
    table.append(Route(PREFIX + "/openapi.json", openapi_json, methods=["GET"]))
    return table
