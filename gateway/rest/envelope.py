"""The `{code, data}` envelope every /api/v1 answer wears."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


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
