"""Text and JSON every supported database can store, and how deep client JSON may nest.

PostgreSQL refuses the NUL character in text. No driver can encode a lone surrogate
(half of a UTF-16 pair, which a JSON `\\ud800` escape or a command-line argument can carry
into a Python `str`) as UTF-8. Both are refused here, by name, before any SQL is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NUL = "\x00"
# JSON Schema patterns of these rules, for documents that state them (the OpenAPI document).
# They avoid `$` and `\s`, which ECMA-262 (what JSON Schema specifies) and Python read
# differently: END is the end of the text in both, BLANK exactly what str.strip() and
# str.isspace() call blank.
END = r"(?![\s\S])"
BLANK = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = rf"^[^\u0000]*{END}"
NOT_BLANK_PATTERN = rf"^[^\u0000]*[^{BLANK}\u0000][^\u0000]*{END}"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NO_NUL = "must not contain NUL characters"
_NO_SURROGATE = "must be valid Unicode text (it holds a lone surrogate)"
_INT_RANGE = (-(2**63), 2**64 - 1)  # what the JSON encoder writes


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return _NO_NUL if found.group() == NUL else _NO_SURROGATE


def json_problem(value: Any, *, max_depth: int) -> str | None:
    """Why a JSON value cannot be stored: a bad string or object key, an integer the
    encoder cannot write, or nesting deeper than `max_depth` containers (`[[1]]` is two
    deep). None when it can."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                return problem
        elif isinstance(item, int) and not _INT_RANGE[0] <= item <= _INT_RANGE[1]:
            # A GraphQL literal may hold any integer; JSON columns keep 64 bits.
            return "must hold no integer beyond 64 bits"
        elif isinstance(item, Mapping | list | tuple):
            depth += 1
            if depth > max_depth:
                return f"must not nest deeper than {max_depth} levels"
            if isinstance(item, Mapping):
                for key, member in item.items():
                    if isinstance(key, str) and (problem := text_problem(key)) is not None:
                        return problem
                    pending.append((member, depth))
            else:
                pending.extend((member, depth) for member in item)
    return None


def storable(value: Any) -> Any:
    """`value` with NULs and lone surrogates in its strings replaced by U+FFFD, for text we
    must keep anyway (log entries quote request paths and client input)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value
