"""Turning raw requests into validated values; every problem is an `Invalid` naming the input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from db.errors import Invalid
from gateway import json_input
from gateway.rest.routing import runtime_of

M = TypeVar("M", bound=BaseModel)

_READABLE = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "literal_error": "must be one of {expected}",
    "datetime_parsing": "must be an ISO 8601 time, such as 2026-11-24T08:00:00+00:00",
    "datetime_from_date_parsing": "must be an ISO 8601 time, such as 2026-11-24T08:00:00+00:00",
    "datetime_type": "must be an ISO 8601 time, such as 2026-11-24T08:00:00+00:00",
}


def _problem(error: ErrorDetails) -> Invalid:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    template = _READABLE.get(error["type"])
    if template is None:
        reason = error["msg"][:1].lower() + error["msg"][1:]
    else:
        reason = template.format(**(error.get("ctx") or {}))
    return Invalid(reason, field=field)


async def json_body(request: Request, model: type[M]) -> M:
    """The body as `model`; bad JSON, a non-object or a bad field is a 400 naming it."""
    raw = await request.body()
    if not raw.strip():
        raise Invalid("a JSON object is required", field="body")
    payload = json_input.decode(raw, max_depth=runtime_of(request).limits.max_json_depth)
    if not isinstance(payload, dict):
        raise Invalid("must be a JSON object", field="body")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise _problem(exc.errors()[0]) from None


def query(request: Request, model: type[M]) -> M:
    """The query string as `model`."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise _problem(exc.errors()[0]) from None


@contextmanager
def renamed(names: Mapping[str, str]) -> Iterator[None]:
    """Report service fields under this door's names (service `content` is REST `message`)."""
    try:
        yield
    except Invalid as exc:
        if exc.field is not None and exc.field in names:
            raise Invalid(exc.reason, field=names[exc.field]) from None
        raise


def path_param(request: Request, name: str) -> str:
    value: Any = request.path_params[name]
    return str(value)
