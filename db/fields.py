"""Field types the models share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from tortoise.fields import JSONField


@dataclass(frozen=True, slots=True)
class Json:
    """A Python value for an AnyJSONField, marked so a `str` is not taken for encoded JSON."""

    value: Any


class AnyJSONField(JSONField):  # type: ignore[type-arg]
    """JSON column for any JSON value, strings included.

    Tortoise hands this field both raw database text and Python values given to a model's
    constructor, and cannot tell a Python `str` from encoded JSON. So: pass values
    through the constructor wrapped in `Json(...)` (plain dicts and lists also work);
    attribute assignment and database values need no wrapping.
    """

    def to_db_value(self, value: Any, instance: Any) -> str | None:
        if isinstance(value, Json):
            value = value.value
        if value is None:
            return None
        return orjson.dumps(value).decode()

    def to_python_value(self, value: Any) -> Any:
        if isinstance(value, Json):
            return value.value
        if isinstance(value, (str, bytes)):
            return orjson.loads(value)
        return value
