"""The /graphql endpoint: strawberry's ASGI view, our context, credentials and GraphiQL.

Requests strawberry refuses before execution (a body that is not JSON, a wrong content
type, a `query` that is not a string) are answered as GraphQL errors with a code, like
every other answer of this door, rather than as strawberry's plain-text bodies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.types import QueryParams

from db.errors import Invalid
from db.identity import Caller
from db.ports import Runtime
from gateway import json_input
from gateway.auth import authenticate
from schema import GraphQLLimits, build_schema
from schema.context import Context

PATH = "/graphql"
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
    field: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A request-level GraphQL error (no `data`: no operation ran)."""
    extensions: dict[str, Any] = {"code": code or CODE_OF_STATUS.get(status, INTERNAL)}
    if field is not None:
        extensions["field"] = field
    body = {"errors": [{"message": message, "extensions": extensions}]}
    # json.dumps, not orjson: a message quoting client input can never fail to encode.
    return JSONResponse(body, status_code=status, headers=headers)


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


class GraphQLEndpoint(GraphQL[Context, None]):
    def __init__(
        self,
        *,
        runtime: Runtime,
        limits: GraphQLLimits,
        ide: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(build_schema(limits), graphql_ide="graphiql" if ide else None, **kwargs)
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except Invalid as exc:  # from parse_json: the body or a query parameter
            response = failure(400, str(exc), field=exc.field)
        except HTTPException as exc:
            response = failure(exc.status_code, exc.reason)
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        """HTTP bodies: problems become BAD_USER_INPUT naming where they are."""
        body = json_input.decode(data, max_depth=self.runtime.limits.max_json_depth)
        if not isinstance(body, dict | list):  # a list: a batch, which strawberry refuses
            raise Invalid("must be a JSON object", field="body")
        return body

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET's `variables` and `extensions` are JSON documents of their own."""
        data: dict[str, Any] = dict(params)
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
        return Context(runtime=self.runtime, authenticate=_authenticate, request=request)

    @cached_property
    def graphql_ide_html(self) -> str:
        return GRAPHIQL_PAGE.read_text(encoding="utf-8")
