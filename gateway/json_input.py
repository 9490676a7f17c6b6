"""JSON a client sends, decoded in one place for both doors.

REST bodies, GraphQL bodies, GraphQL `variables` in a query string and WebSocket messages
all come through `decode()`. Whatever is wrong (invalid UTF-8, a lone surrogate escape,
nesting deep enough to exhaust a recursive parser, bad syntax) becomes one `Invalid`
naming where in the document it is, before any other library sees the input.
"""

from __future__ import annotations

from typing import Any

import orjson

from db.errors import Invalid

# A body wraps the values it carries in a few levels of its own (GraphQL: variables, input,
# field), and the service applies the business limit to each value. The parse guard allows
# that much more, so it only catches what no value limit could.
ENVELOPE_DEPTH = 16
# A bad string is named by its whole path (`metadata.tags[2]`), up to this many segments.
_SHOWN_SEGMENTS = 8
# Nesting that is too deep is named by the object keys that lead to it (`metadata`, not the
# 10,000 indices below), up to this many.
_SHOWN_KEYS = 3


def decode(data: bytes | str, *, max_depth: int, source: str = "body") -> Any:
    """The JSON value in `data`; `Invalid` naming the place of the first problem otherwise.

    `max_depth` is the business limit of a value; the document may nest ENVELOPE_DEPTH more.
    `source` names the document itself (`body`, or the query parameter it came in); the
    members of a body's top-level object are named on their own (`metadata`, not `body.metadata`).
    """
    limit = max_depth + ENVELOPE_DEPTH
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _explain(data, exc, max_depth, source) from None
    # Counting brackets is far cheaper than walking the value: most bodies cannot be deep.
    if _brackets(data) > limit and (path := _too_deep(value, limit)) is not None:
        raise Invalid(_deeper_than(max_depth), field=_name(_leading_keys(path), source))
    return value


def _brackets(data: bytes | str) -> int:
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{")
    return data.count("[") + data.count("{")


def _too_deep(value: Any, limit: int) -> list[str | int] | None:
    """The path of the first container nested deeper than `limit`, or None."""
    pending: list[tuple[Any, list[str | int]]] = [(value, [])]
    while pending:
        item, path = pending.pop()
        if isinstance(item, dict | list):
            if len(path) >= limit:
                return path
            members = item.items() if isinstance(item, dict) else enumerate(item)
            pending.extend((member, [*path, key]) for key, member in members)
    return None


def _deeper_than(max_depth: int) -> str:
    return f"must not nest deeper than {max_depth} levels"


def _explain(
    data: bytes | str, exc: orjson.JSONDecodeError, max_depth: int, source: str
) -> Invalid:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        prefix = raw[: bad.start].decode("utf-8")
        reason = f"is not valid UTF-8 (byte 0x{raw[bad.start]:02x} at offset {bad.start})"
        return Invalid(reason, field=_name(_path_at(prefix, len(prefix)), source))
    # Given bytes, orjson may report position 0; given the text, it reports where.
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as located:
        exc = located
    if "surrogate" in exc.msg:
        reason = "must be valid Unicode text (it holds a lone surrogate escape such as \\ud800)"
    elif "depth" in exc.msg:
        path = _leading_keys(_path_at(text, exc.pos))
        return Invalid(_deeper_than(max_depth), field=_name(path, source))
    else:
        return Invalid(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            field=source,
        )
    return Invalid(reason, field=_name(_path_at(text, exc.pos), source))


def _path_at(text: str, position: int) -> list[str | int]:
    """The path (object keys, array indices) of the value being read at `position`.

    Only called on the error path, over the well-formed prefix a parser accepted.
    """
    path: list[str | int | None] = []  # None: an object whose next key is not read yet
    index = 0
    while index < position:
        char = text[index]
        if char == '"':
            end = index + 1
            while end < position and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if end >= position:
                break  # the position is inside this string
            if path and path[-1] is None:
                path[-1] = _key(text[index : end + 1])
            index = end + 1
            continue
        if char == "{":
            path.append(None)
        elif char == "[":
            path.append(0)
        elif char in "}]" and path:
            path.pop()
        elif char == "," and path:
            last = path[-1]
            path[-1] = last + 1 if isinstance(last, int) else None
        index += 1
    return [segment for segment in path if segment is not None]


def _leading_keys(path: list[str | int]) -> list[str | int]:
    keys: list[str | int] = []
    for segment in path[:_SHOWN_KEYS]:
        if isinstance(segment, int):
            break
        keys.append(segment)
    return keys


def _key(quoted: str) -> str:
    """An object key as written; its raw text when it cannot be decoded (a lone surrogate
    escape, a control character: the very problem may be in an earlier key)."""
    try:
        key = orjson.loads(quoted)
    except orjson.JSONDecodeError:
        return quoted[1:-1]
    return key if isinstance(key, str) else quoted[1:-1]


def _name(path: list[str | int], source: str) -> str:
    """`metadata.tags[2]`, cut after a few segments; `body`, `body[0]` for the document."""
    name = source if not path or isinstance(path[0], int) or source != "body" else ""
    for segment in path[:_SHOWN_SEGMENTS]:
        name += f"[{segment}]" if isinstance(segment, int) else f".{segment}" if name else segment
    return name
