"""Models -> the exact dicts of the original design (extra keys allowed, none renamed)."""

from __future__ import annotations

from typing import Any

from db.models import LogEntry, Message, ModelConfig
from gateway.rest.requests import iso


def message_out(message: Message) -> dict[str, Any]:
    return {
        "message_id": str(message.id),
        "type": str(message.type),
        "content": message.content,
        "created_time": iso(message.created_at),
        "metadata": message.metadata,
    }


def model_config_out(config: ModelConfig) -> dict[str, Any]:
    return {
        "config_id": str(config.id),
        "model_name": config.model_name,
        "model_version": config.model_version,
        "parameters": config.parameters,
        "provider": config.provider,
        "base_url": config.base_url,
        "api_key_env": config.api_key_env,
        "is_default": config.is_default,
        "version": config.version,
        "updated_time": iso(config.updated_at),
    }


def log_out(entry: LogEntry) -> dict[str, Any]:
    return {
        "log_id": str(entry.id),
        "level": str(entry.level),
        "message": entry.message,
        "created_time": iso(entry.created_at),
        "event": entry.event,
        "actor_id": entry.actor_id,
        "details": entry.details,
    }
