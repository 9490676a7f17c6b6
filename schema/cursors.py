"""Opaque cursors: base64url of a small JSON list; what they hold is nobody else's business."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

from db.errors import Invalid
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


def parse_key_cursor(cursor: str | None, kind: str, field: str) -> SortKey | None:
    if cursor is None:
        return None
    values = _decode(cursor, kind, field)
    try:
        moment = datetime.fromisoformat(values[0])
        row_id = values[1]
    except (IndexError, TypeError, ValueError):
        raise Invalid("is not a cursor of this list", field=field) from None
    if len(values) != 2 or not isinstance(row_id, str | int):
        raise Invalid("is not a cursor of this list", field=field)
    return SortKey(moment, row_id)
