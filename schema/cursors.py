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
from db.times import iso, iso_sql


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


# The cursors as PostgreSQL writes them (their twins: change both), from SQL expressions,
# for the compiled read path: orjson's compact JSON, then base64url without padding.
def _encode_sql(json_text: str) -> str:
    # PostgreSQL's base64 also breaks lines every 76 characters.
    return f"translate(encode(convert_to({json_text}, 'UTF8'), 'base64'), E'+/=\\n', '-_')"


def seq_cursor_sql(seq: str) -> str:
    return _encode_sql(f"""'["m",' || ({seq}) || ']'""")


def key_cursor_sql(kind: str, created_at: str, row_id: str) -> str:
    """`key_cursor` of a row with a UUID id."""
    return _encode_sql(
        f"""'["{kind}","' || {iso_sql(created_at)} || '","' || {row_id}::text || '"]'"""
    )


def parse_seq_cursor(cursor: str | None, field: str) -> int | None:
    if cursor is None:
        return None
    values = _decode(cursor, "m", field)
    if len(values) != 1 or type(values[0]) is not int:
        raise Invalid("is not a cursor of this list", field=field)
    seq: int = values[0]
    return seq


def version_cursor(version: int) -> str:
    """The cursor of a model config's version in its list (newest first)."""
    return _encode(["v", version])


def parse_version_cursor(cursor: str | None, field: str) -> int | None:
    if cursor is None:
        return None
    values = _decode(cursor, "v", field)
    # A version number is a 32-bit integer in the database: a larger one must not reach it.
    if len(values) != 1 or type(values[0]) is not int or not 0 < values[0] < 2**31:
        raise Invalid("is not a cursor of this list", field=field)
    version: int = values[0]
    return version


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


def offset_cursor(kind: str, offset: int) -> str:
    """The cursor of the item at `offset` (from 0) of a list cut by position, such as
    search results (ranked: no column to continue from)."""
    return _encode([kind, offset])


def parse_offset_cursor(cursor: str | None, kind: str, field: str, *, below: int) -> int | None:
    """The offset in `cursor`, which must be under `below`."""
    if cursor is None:
        return None
    values = _decode(cursor, kind, field)
    if len(values) != 1 or type(values[0]) is not int or not 0 <= values[0] < below:
        raise Invalid("is not a cursor of this list", field=field)
    offset: int = values[0]
    return offset
