"""The /graphql door's fast path: read queries answered by one compiled statement.

Only a plain POST of a JSON body with credentials is taken (a query, maybe variables and
an operation name); the body is read once, and whatever this path leaves, Strawberry
answers from the same Request (Starlette keeps the body it read). The caller is
authenticated first, so nothing is compiled or cached for a client without a valid key,
and the outcome is kept in the request's scope: a request that falls back is not
authenticated (nor a failure counted) twice. Anything that goes wrong here (the database
away, a statement failing) leaves the request to Strawberry, which meets the same trouble
and words it as it always does.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from db.errors import Invalid, RateLimited, Unauthenticated
from gateway import json_input
from gateway.auth import authenticate
from gateway.request_info import note_operation
from schema import CompiledReads

logger = logging.getLogger(__name__)

# Where the fast path leaves the outcome of authentication for Strawberry's context.
CALLER_KEY = "gateway.graphql.caller"
_MEMBERS = frozenset({"query", "variables", "operationName"})


async def answer(reads: CompiledReads, request: Request, *, max_json_depth: int) -> Response | None:
    """The compiled answer to `request`, or None for Strawberry to answer it."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    if "authorization" not in request.headers:
        return None  # Strawberry answers (UNAUTHENTICATED, or a document needing no one)
    try:
        body = json_input.decode(await request.body(), max_depth=max_json_depth)
    except Invalid:
        return None
    note_operation(body)
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
    try:
        caller = await authenticate(request.headers, source="graphql")
    except (Unauthenticated, RateLimited) as exc:  # counted once: Strawberry answers it
        request.scope[CALLER_KEY] = exc
        return None
    except Exception:
        logger.debug("left to strawberry: authentication failed", exc_info=True)
        return None
    request.scope[CALLER_KEY] = caller
    try:
        prepared = reads.prepare(query, operation_name, variables or {})
        text = None if prepared is None else await reads.answer(prepared, caller)
    except Exception:
        logger.debug("left to strawberry: the compiled path failed", exc_info=True)
        return None
    return None if text is None else Response(text, media_type="application/json")
