"""One table from service errors to `extensions.code`, and what happens to the rest.

Expected errors (not found, forbidden, bad input...) keep their message and are not
logged with a traceback; request errors (syntax, validation, limits, variables) stay
readable; anything unexpected is masked, logged once with its traceback, and recorded
in the operation log with a reference the client also sees.
"""

from __future__ import annotations

import logging
import uuid

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from db import request_context
from db.errors import (
    Busy,
    Forbidden,
    Invalid,
    ModelFailed,
    NotFound,
    RateLimited,
    ServiceError,
    Unauthenticated,
)
from db.services import auth_failures, logs

logger = logging.getLogger("gateway.graphql")

CODE_OF: dict[type[ServiceError], str] = {
    Invalid: "BAD_USER_INPUT",
    Unauthenticated: "UNAUTHENTICATED",
    Forbidden: "FORBIDDEN",
    NotFound: "NOT_FOUND",
    RateLimited: "RATE_LIMITED",
    Busy: "INTERNAL_SERVER_ERROR",
    ModelFailed: "INTERNAL_SERVER_ERROR",
}
# Service fields are snake_case; this door names them as its schema does.
_FIELD_NAMES = {"changes": "input"}
# Refusals strawberry raises before execution (e.g. a query sent over the legacy graphql-ws
# protocol, an unknown operationName over a WebSocket): the client's mistake, not ours.
_REQUEST_EXCEPTIONS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def code_of(error: ServiceError) -> str:
    return next(
        (code for kind, code in CODE_OF.items() if isinstance(error, kind)), "INTERNAL_SERVER_ERROR"
    )


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return _FIELD_NAMES.get(name) or head + "".join(part.title() for part in rest)


def shape(error: GraphQLError, *, refused_before_execution: bool = False) -> None:
    """Give `error` its code (and mask it when unexpected), in place, exactly once.

    `refused_before_execution`: the error is one of the document's parse or validation
    errors (a bad literal's scalar parser may have raised any exception there).
    """
    extensions = dict(error.extensions or {})
    if "code" in extensions:
        return
    original = error.original_error
    if isinstance(original, ServiceError):
        extensions["code"] = code_of(original)
        if isinstance(original, Forbidden):
            # Counted here, once per answer: the compiled read path's own check of the
            # same rule hands the request to Strawberry without answering it.
            field = error.path[0] if error.path else "?"
            auth_failures.note(
                event=auth_failures.DENIED,
                reason=original.message,
                source=f"GraphQL {field}",
                actor_id=original.actor_id,
            )
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = original.retry_after
        if isinstance(original, Invalid) and original.field:
            extensions["field"] = camel(original.field)
            error.message = f"{extensions['field']}: {original.reason}"
    elif error.path is None and (refused_before_execution or _is_request_error(error)):
        extensions["code"] = _request_error_code(error)
    else:
        reference = request_context.current() or uuid.uuid4().hex[:12]  # the request id
        logger.error("internal error %s in %s", reference, error.path, exc_info=original)
        _record(reference, error, original)
        extensions["code"] = "INTERNAL_SERVER_ERROR"
        error.message = f"Internal server error (reference {reference})"
    error.extensions = extensions


def _is_request_error(error: GraphQLError) -> bool:
    original = error.original_error
    return (
        original is None
        or isinstance(original, (GraphQLError, *_REQUEST_EXCEPTIONS))
        or _is_variable_error(error)
    )


def _is_variable_error(error: GraphQLError) -> bool:
    return error.message.startswith("Variable '$")


def _request_error_code(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if _is_variable_error(error):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def _record(reference: str, error: GraphQLError, original: BaseException | None) -> None:
    logs.record_internal_error(
        reference=reference,
        where=f"in GraphQL {'.'.join(map(str, error.path or []))}",
        exception=type(original).__name__ if original else "GraphQLError",
    )
