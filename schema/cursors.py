"""Opaque cursors: base64url of a small JSON list; what they hold is nobody else's business."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson

from db.errors import Invalid
from db.services.ids import is_uuid
from db.services.keyset import SortKey
from db.times import iso


def _encode(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decode(cursor: str, kind: str, field: str) -> list[Any]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        parts = None
    if not isinstance(parts, list) or not parts or parts[0] != kind:
        raise Invalid("is not a cursor of this list", field=field)
    return parts[1:]


def seq_cursor(seq: int) -> str:
    return _encode(["m", seq])


def parse_seq_cursor(cursor: str | None, field: str) -> int | None:
    if cursor is None:
        return None
    values = _decode(cursor, "m", field)
    if len(values) != 1 or type(values[0]) is not int:
        raise Invalid("is not a cursor of this list", field=field)
    seq: int = values[0]
    return seq


def key_cursor(kind: str, created_at: datetime, row_id: object) -> str:
    return _encode([kind, iso(created_at), row_id if isinstance(row_id, int) else str(row_id)])


def parse_key_cursor(
    cursor: str | None, kind: str, field: str, *, integer_ids: bool = False
) -> SortKey | None:
    """The sort key in `cursor`; `integer_ids` when the list's rows have integer ids, else
    UUIDs. A value of another type would reach the database (and fail there) otherwise."""
    if cursor is None:
        return None
    values = _decode(cursor, kind, field)
    try:
        moment = datetime.fromisoformat(values[0])
        row_id = values[1]
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        moment = moment.astimezone(UTC)
    except (IndexError, TypeError, ValueError, OverflowError):
        raise Invalid("is not a cursor of this list", field=field) from None
    if len(values) != 2 or not _is_row_id(row_id, integer_ids):
        raise Invalid("is not a cursor of this list", field=field)
    return SortKey(moment, row_id)


def _is_row_id(value: object, integer: bool) -> bool:
    if integer:
        return type(value) is int and -(2**63) <= value < 2**63
    return is_uuid(value)
