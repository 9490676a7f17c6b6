"""The id of the request being served, set by the gateway, read by the service layer.

A context variable: tasks a request starts (a reply running on after its listener left,
a log entry written in the background) copy it, so what they write carries the id too.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def current() -> str | None:
    """The id of the request this code runs for, if any (None in the CLI, at start-up)."""
    return REQUEST_ID.get()


def tagged(details: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """`details` with the current request id added (as `request_id`) when there is one."""
    request_id = REQUEST_ID.get()
    if request_id is None or (details is not None and "request_id" in details):
        return details
    return {**(details or {}), "request_id": request_id}
