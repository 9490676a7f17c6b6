"""Ids are opaque strings to clients; here they are UUIDs."""

from __future__ import annotations

import re

# The canonical spelling, as str(UUID(...)) writes it: lower-case hex in 8-4-4-4-12.
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_uuid(value: object) -> bool:
    """True when `value` can be looked up: an id exactly as the gateway writes them (a
    malformed id is simply 'not found').

    Only the canonical spelling counts: PostgreSQL refuses `{...}` and `urn:uuid:...` and
    matches upper case, where SQLite compares text; so any other spelling finds nothing,
    on every database alike.
    """
    return isinstance(value, str) and _CANONICAL.fullmatch(value) is not None
