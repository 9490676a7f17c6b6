"""Assertions on the /api/v1 envelope shared by the REST tests."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx


def ok(response: httpx.Response) -> Any:
    """The `data` of a success envelope."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"code", "data"}, body
    assert body["code"] == 200
    return body["data"]


def refused(response: httpx.Response, status: int, *, field: str | None = None) -> str:
    """The message of an error envelope with this status; it must name `field` when given."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == status
    assert body["data"] is None
    message = body["message"]
    assert isinstance(message, str) and message.strip()
    if field is not None:
        named = re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])", message)
        assert named, f"{message!r} does not name {field!r}"
    return message


def utc_time(value: Any) -> datetime:
    """An ISO 8601 time in UTC with an explicit +00:00 offset, parsed."""
    assert isinstance(value, str), value
    assert value.endswith("+00:00"), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0)
    return moment


def url(path: str) -> str:
    return "/api/v1" + path
