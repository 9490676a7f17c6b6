"""Stored rows -> the exact dicts of the original design, by its one naming rule.

A row's id is `<kind>_id`, a `..._at` time is `..._time` in ISO 8601 UTC, an enum is its
value, and every other field keeps its stored name and value.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any

from tortoise.models import Model

from db.models import ChatSession, LogEntry, Message, ModelConfig, ModelConfigVersion
from db.services.sessions import message_count
from db.times import iso


def record(row: Model, id_key: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """`row` as the original design shows it: its id as `id_key`, then `fields`."""
    shaped: dict[str, Any] = {id_key: str(row.pk)}
    for name, shown_as, is_time in _named(fields):
        value = getattr(row, name)
        if is_time:
            shaped[shown_as] = iso(value)
        elif isinstance(value, StrEnum):
            shaped[shown_as] = value.value
        else:
            shaped[shown_as] = value
    return shaped


@cache
def _named(fields: tuple[str, ...]) -> tuple[tuple[str, str, bool], ...]:
    """Each field's name in the design, and whether it is a time (worked out once)."""
    return tuple(
        (name, name.removesuffix("_at") + "_time", True)
        if name.endswith("_at")
        else (name, name, False)
        for name in fields
    )


def session_out(session: ChatSession) -> dict[str, Any]:
    """A session as the extension routes show it."""
    return {
        "session_id": str(session.id),
        "user_id": str(session.user_id),
        "model_config_id": str(session.model_config_id),
        "title": session.title,
        "archived": session.archived,
        "created_time": iso(session.created_at),
        "updated_time": iso(session.updated_at),
        "message_count": message_count(session),
        "forked_from_message_id": (
            str(session.forked_from_id) if session.forked_from_id is not None else None
        ),
    }


def message_out(message: Message) -> dict[str, Any]:
    return record(message, "message_id", ("type", "content", "created_at", "metadata"))


def user_message_out(message: Message) -> dict[str, Any]:
    """The question as a send answers it: which message it became, and when."""
    return record(message, "message_id", ("created_at",))


def ai_message_out(message: Message) -> dict[str, Any]:
    return record(message, "message_id", ("content", "created_at", "metadata"))


def model_config_out(config: ModelConfig) -> dict[str, Any]:
    return record(
        config,
        "config_id",
        (
            "model_name",
            "model_version",
            "parameters",
            "provider",
            "base_url",
            "api_key_env",
            "is_default",
            "version",
            "updated_at",
        ),
    )


def model_config_updated(config: ModelConfig) -> dict[str, Any]:
    return record(config, "config_id", ("updated_at", "version"))


def model_config_version_out(row: ModelConfigVersion) -> dict[str, Any]:
    # Named by its config and number (the row's own id means nothing to a client).
    return {
        "config_id": str(row.config_id),
        "version": row.version,
        "created_time": iso(row.created_at),
        "actor_id": row.actor_id,
        "changed_fields": list(row.changed_fields or []),
        "snapshot": row.snapshot,
    }


def log_out(entry: LogEntry) -> dict[str, Any]:
    return record(
        entry, "log_id", ("level", "message", "created_at", "event", "actor_id", "details")
    )
