"""The `{code, data}` envelope every /api/v1 answer wears, and the status of each service error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

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
from db.services.rate_limits import Quota

STATUS_OF: dict[type[ServiceError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    RateLimited: 429,
    Busy: 500,
    ModelFailed: 500,
}


# Where a REST request keeps where its caller stands, for the headers of an error answer.
QUOTA_KEY = "gateway.rest.quota"


def quota_headers(quota: Quota) -> dict[str, str]:
    """The IETF draft's RateLimit-* headers for the requests-per-minute limit."""
    return {
        "RateLimit-Limit": str(quota.limit),
        "RateLimit-Remaining": str(quota.remaining),
        "RateLimit-Reset": str(quota.reset),
    }


def status_of(error: ServiceError) -> int:
    return next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 500)


class EnvelopeResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any) -> EnvelopeResponse:
    return EnvelopeResponse({"code": 200, "data": data}, status_code=200)


def failure(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> EnvelopeResponse:
    return EnvelopeResponse(
        {"code": status, "message": message, "data": None}, status_code=status, headers=headers
    )
