"""Schemathesis hooks and checks for fuzzing the gateway (`SCHEMATHESIS_HOOKS` names this).

Hooks state the two rules a JSON Schema cannot: a log query's `start_time` may not come
after its `end_time`, and a retry key names one message (a repeat with another body is
refused on purpose). Checks add what a client must never see from either door: a
server-side failure, or a traceback, SQL or a file path in any answer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

import schemathesis

from db.times import in_utc

# What only an internal failure would print.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|\.py\", line \d|asyncpg|sqlite3|"
    r"\bSELECT\b.*\bFROM\b|\bINSERT INTO\b|site-packages"
)


def _moment(value: Any) -> datetime | None:
    try:
        return in_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


@schemathesis.hook
def filter_query(ctx: Any, query: dict[str, Any] | None) -> bool:
    """A time range that ends before it starts is refused (400) by the contract."""
    if not query or "start_time" not in query or "end_time" not in query:
        return True
    start, end = _moment(query["start_time"]), _moment(query["end_time"])
    return start is None or end is None or start <= end


def _fresh_key(key: str) -> str:
    """A new key with the old one's length and shape (non-blank, at most 200 characters)."""
    if not key.strip():
        return key  # blank: invalid either way
    unique = (uuid.uuid4().hex * (len(key) // 32 + 1))[: len(key)]
    return unique


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    """A retry key, in the header or the body, names one message: make each case's key new.
    When both are sent they must be the same key (a 400 otherwise, as documented)."""
    headers = case.headers if isinstance(case.headers, MutableMapping) else None
    body = case.body if isinstance(case.body, MutableMapping) else None
    header_key = headers.get("Idempotency-Key") if headers else None
    body_key = body.get("client_message_id") if body else None
    if isinstance(header_key, str) and headers is not None:
        headers["Idempotency-Key"] = header_key = _fresh_key(header_key)
    if isinstance(body_key, str) and body is not None:
        body["client_message_id"] = (
            header_key if isinstance(header_key, str) else _fresh_key(body_key)
        )
    return case


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx and, in GraphQL, no INTERNAL_SERVER_ERROR: every refusal is the client's."""
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    try:
        payload = response.json()
    except ValueError:
        return None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    for error in errors or []:
        code = (error.get("extensions") or {}).get("code")
        if code in (None, "INTERNAL_SERVER_ERROR"):
            raise AssertionError(f"GraphQL error without a client code: {error}")
    return None


@schemathesis.check
def no_internals_shown(ctx: Any, response: Any, case: Any) -> bool | None:
    """No traceback, SQL or file path in any answer."""
    found = LEAKS.search(response.text)
    if found:
        raise AssertionError(
            f"the answer shows internals ({found.group()!r}): {response.text[:500]}"
        )
    return None
