"""Text every supported database can store: PostgreSQL refuses the NUL character."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NUL = "\x00"


def has_nul(value: Any) -> bool:
    """True when a string anywhere in a JSON value (object keys included) holds a NUL."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def without_nul(value: Any) -> Any:
    """`value` with every NUL in its strings replaced by U+FFFD, for text we must keep anyway."""
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd")
    if isinstance(value, Mapping):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value
