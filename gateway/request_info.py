"""What the gateway learns about the request it serves, for its access line and metrics.

`RequestObserver` (gateway.observe) puts one `RequestInfo` in a context variable as a
request starts; authentication and the GraphQL door fill in what they learn.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

# A GraphQL document's first named operation, for a request that names none itself.
_OPERATION = re.compile(r"^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")
# An operation name as GraphQL spells them, at most 64 characters.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


@dataclass(slots=True)
class RequestInfo:
    """One request: its id, and who asked and which GraphQL operation, once known."""

    request_id: str
    user_id: str | None = None
    operation: str | None = None


CURRENT: ContextVar[RequestInfo | None] = ContextVar("request_info", default=None)


def note_caller(user_id: str) -> None:
    """Authentication found the caller of the current request."""
    info = CURRENT.get()
    if info is not None:
        info.user_id = user_id


def note_operation(body: object) -> None:
    """The GraphQL door read the request's body: remember the operation's name."""
    info = CURRENT.get()
    if info is None or not isinstance(body, dict):
        return
    name = body.get("operationName")
    if not isinstance(name, str) or not name:
        query = body.get("query")
        found = _OPERATION.match(query) if isinstance(query, str) else None
        name = found.group(1) if found else None
    # Only a GraphQL name (no newline to forge a log line, no megabyte of label) is kept.
    info.operation = name if name is not None and _NAME.fullmatch(name) else None
