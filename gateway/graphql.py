"""The /graphql endpoint: strawberry's ASGI view, our context, credentials and GraphiQL."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from db.identity import Caller
from db.ports import Runtime
from gateway.auth import authenticate
from schema import GraphQLLimits, build_schema
from schema.context import Context

GRAPHIQL_PAGE = Path(__file__).with_name("graphiql.html")


async def _authenticate(context: Context) -> Caller:
    """Credentials from the `connection_init` payload, else from the request's headers."""
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


class GraphQLEndpoint(GraphQL[Context, None]):
    def __init__(self, *, runtime: Runtime, limits: GraphQLLimits, ide: bool, **kwargs: Any):
        super().__init__(build_schema(limits), graphql_ide="graphiql" if ide else None, **kwargs)
        self.runtime = runtime

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(runtime=self.runtime, authenticate=_authenticate, request=request)

    @cached_property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_PAGE.read_text(encoding="utf-8")
