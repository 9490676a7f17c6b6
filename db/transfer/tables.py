"""What a data move copies, read from the Tortoise models: tables, columns, their kinds,
and an order in which every foreign key points at a table already copied."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tortoise import Tortoise, fields
from tortoise.fields.base import Field
from tortoise.models import Model

from db.config import APP_LABEL


class Kind(StrEnum):
    """How a column's values differ between the drivers (the rest pass through as given)."""

    UUID = "uuid"
    DATETIME = "datetime"
    JSON = "json"
    BOOL = "bool"
    PLAIN = "plain"


# Field types whose values both drivers give and take alike (ints, text, floats, bytes).
_PLAIN = (
    fields.IntField,
    fields.SmallIntField,
    fields.CharField,
    fields.TextField,
    fields.FloatField,
    fields.BinaryField,
)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    primary_key: str
    columns: tuple[Column, ...]
    # Foreign keys to the same table: written once every row is in (NULL until then).
    deferred: tuple[str, ...]
    # An auto-increment integer key, whose sequence must follow the copied ids.
    serial: bool


def kind_of(field: Field) -> Kind:  # type: ignore[type-arg]
    """The column kind of a model field; a type the move does not know yet is an error, so
    a model that adds one fails the round-trip test instead of copying it wrong."""
    if isinstance(field, fields.UUIDField):
        return Kind.UUID
    if isinstance(field, fields.DatetimeField):
        return Kind.DATETIME
    if isinstance(field, fields.JSONField):
        return Kind.JSON
    if isinstance(field, fields.BooleanField):
        return Kind.BOOL
    if isinstance(field, _PLAIN):
        return Kind.PLAIN
    raise TypeError(f"db copy does not know how to copy {type(field).__name__} columns yet")


def _table(model: type[Model]) -> Table:
    meta = model._meta
    columns = tuple(
        Column(name=column, kind=kind_of(meta.fields_map[name]))
        for name, column in meta.fields_db_projection.items()
    )
    relations = meta.fk_fields | meta.o2o_fields
    deferred = tuple(
        meta.fields_db_projection[str(meta.fields_map[name].source_field)]
        for name in sorted(relations)
        if meta.fields_map[name].related_model is model  # type: ignore[attr-defined]
    )
    pk = meta.fields_map[meta.pk_attr]
    serial = bool(pk.generated) and isinstance(pk, fields.IntField)
    return Table(
        name=meta.db_table,
        primary_key=meta.fields_db_projection[meta.pk_attr],
        columns=columns,
        deferred=deferred,
        serial=serial,
    )


def _in_foreign_key_order(models: list[type[Model]]) -> list[type[Model]]:
    """Each model after the models its foreign keys point at (the models' own order
    breaks ties, so the order is stable)."""
    ordered: list[type[Model]] = []
    pending = list(models)
    while pending:
        for model in pending:
            meta = model._meta
            targets = {
                meta.fields_map[name].related_model  # type: ignore[attr-defined]
                for name in meta.fk_fields | meta.o2o_fields
            }
            if all(target is model or target in ordered for target in targets):
                ordered.append(model)
                pending.remove(model)
                break
        else:
            raise ValueError(f"foreign keys form a cycle among {[m.__name__ for m in pending]}")
    return ordered


def copied_tables() -> list[Table]:
    """Every table of the models but the ephemeral ones, in foreign key order."""
    from db import models as package  # the models package, loaded without a connection

    if APP_LABEL not in (Tortoise.apps or {}):
        Tortoise.init_models(["db.models"], APP_LABEL)
    models = [model for model in package.__models__ if model not in package.EPHEMERAL]
    for model in models:
        for name in model._meta.fk_fields | model._meta.o2o_fields:
            target = model._meta.fields_map[name].related_model  # type: ignore[attr-defined]
            if target in package.EPHEMERAL:
                raise ValueError(f"{model.__name__} points at ephemeral {target.__name__}")
    return [_table(model) for model in _in_foreign_key_order(models)]
