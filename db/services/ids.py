"""Ids are opaque strings to clients; here they are UUIDs."""

from __future__ import annotations

from uuid import UUID


def is_uuid(value: object) -> bool:
    """True when `value` can be looked up (a malformed id is simply 'not found')."""
    if not isinstance(value, str):
        return False
    try:
        UUID(value)
    except ValueError:
        return False
    return True
