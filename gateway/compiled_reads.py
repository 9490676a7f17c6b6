"""The /graphql door's fast path: read queries answered by one compiled statement.

Only a plain POST of a JSON body is taken (a query, maybe variables and an operation
name); the body is read once, and whatever this path leaves, Strawberry answers from the
same Request (Starlette keeps the body it read). The caller authenticated here is kept in
the request's scope, so a request that falls back is not authenticated (nor a failure
counted) twice.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from db.errors import Invalid, Unauthenticated
from gateway import json_input
from gateway.auth import authenticate
from schema import CompiledReads
from schema.compiled.compiler import Refused

# Where the fast path leaves the outcome of authentication for Strawberry's context.
CALLER_KEY = "gateway.graphql.caller"
_MEMBERS = frozenset({"query", "variables", "operationName"})


async def answer(reads: CompiledReads, request: Request, *, max_json_depth: int) -> Response | None:
    """The compiled answer to `request`, or None for Strawberry to answer it."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        body = json_input.decode(await request.body(), max_depth=max_json_depth)
    except Invalid:
        return None
    if not isinstance(body, dict) or not body.keys() <= _MEMBERS:
        return None
    query, variables, operation_name = (
        body.get("query"),
        body.get("variables"),
        body.get("operationName"),
    )
    if not isinstance(query, str) or not isinstance(operation_name, str | None):
        return None
    if not isinstance(variables, dict | None):
        return None
    prepared = reads.prepare(query, operation_name, variables or {})
    if prepared is None:
        return None
    try:
        caller = await authenticate(request.headers, source="graphql")
    except Unauthenticated as exc:
        request.scope[CALLER_KEY] = exc
        return None
    request.scope[CALLER_KEY] = caller
    try:
        text = await reads.answer(prepared, caller)
    except Refused:
        return None
    return None if text is None else Response(text, media_type="application/json")
