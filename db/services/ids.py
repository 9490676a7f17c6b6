"""Ids are opaque strings to clients; here they are UUIDs."""

from __future__ import annotations

from uuid import UUID

_CANONICAL_LENGTH = 36


def is_uuid(value: object) -> bool:
    """True when `value` can be looked up: an id exactly as the gateway writes them (a
    malformed id is simply 'not found').

    Only the canonical spelling counts: PostgreSQL refuses `{...}` and `urn:uuid:...` and
    matches upper case, where SQLite compares text; so any other spelling finds nothing,
    on every database alike.
    """
    if not isinstance(value, str) or len(value) != _CANONICAL_LENGTH:
        return False
    try:
        return str(UUID(value)) == value
    except ValueError:
        return False
