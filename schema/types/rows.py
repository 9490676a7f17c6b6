"""Strawberry types built from stored rows: `id` is the row's key as an opaque ID, the
fields a type shares with its row by name are copied, and the others (enums, computed
values) are converted by the type's `from_model`."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import strawberry

T = TypeVar("T")


def from_row(cls: type[T], row: object, /, **converted: Any) -> T:
    """An instance of the Strawberry type `cls`: the `converted` values, and each other
    field read from the row's attribute of the same name (`id` as an opaque ID)."""
    values = dict(converted)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not field.init or field.name in values:
            continue
        value = getattr(row, "pk" if field.name == "id" else field.name)
        values[field.name] = strawberry.ID(str(value)) if field.name == "id" else value
    return cls(**values)
