"""AI model configurations: listing, creating, updating (which bumps the version)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from db.errors import Invalid, NotFound
from db.identity import Caller, require_admin
from db.models import LogLevel, ModelConfig
from db.ports import ModelRegistry, ModelSpec, Runtime
from db.services import logs
from db.services.config_rules import check_fields
from db.services.ids import is_uuid

logger = logging.getLogger(__name__)

BUILTIN_ECHO: dict[str, Any] = {"provider": "echo", "model_name": "echo", "model_version": "1"}
# Config changes travel to every process on this topic.
CHANGES_TOPIC = "model_configs"


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """Fields an update may set; None means 'leave as is'."""

    model_name: str | None = None
    model_version: str | None = None
    parameters: Mapping[str, Any] | None = None
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    is_default: bool | None = None

    def given(self) -> dict[str, Any]:
        return {
            name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None
        }


def spec_of(config: ModelConfig) -> ModelSpec:
    """The immutable snapshot a provider builds its client from."""
    return ModelSpec(
        config_id=str(config.id),
        version=config.version,
        provider=config.provider,
        model_name=config.model_name,
        model_version=config.model_version,
        parameters=dict(config.parameters or {}),
        base_url=config.base_url,
        api_key_env=config.api_key_env,
    )


async def list_all() -> list[ModelConfig]:
    return list(await ModelConfig.all().order_by("created_at", "id"))


async def get(*, config_id: str) -> ModelConfig:
    config = await ModelConfig.get_or_none(id=config_id) if is_uuid(config_id) else None
    if config is None:
        raise NotFound("model config not found")
    return config


async def get_many(config_ids: Sequence[str]) -> list[ModelConfig]:
    """Configs by id, for loaders."""
    return list(await ModelConfig.filter(id__in=[c for c in config_ids if is_uuid(c)]))


async def get_default() -> ModelConfig:
    config = await ModelConfig.filter(is_default=True).order_by("created_at").first()
    if config is None:
        config = await ModelConfig.all().order_by("created_at").first()
    if config is None:
        raise NotFound("no model config exists; run `chat-gateway migrate`")
    return config


async def ensure_builtin() -> bool:
    """Create the built-in `echo` config as the default when there is no config at all."""
    async with in_transaction():
        if await ModelConfig.exists():
            return False
        await ModelConfig.create(**BUILTIN_ECHO, parameters={}, is_default=True)
    return True


async def follow_changes(runtime: Runtime, ready: asyncio.Event | None = None) -> None:
    """Retire this process's clients of configs changed anywhere; runs until cancelled."""
    async with runtime.events.subscribe(CHANGES_TOPIC) as changes:
        if ready is not None:
            ready.set()
        async for change in changes:
            if change.get("kind") == "config_changed":
                runtime.models.retire(str(change["config_id"]), version=int(change["version"]))


def authorize_change(*, caller: Caller) -> None:
    """Only admins create or change configs; a door may ask before it reads their input."""
    require_admin(caller, "change model configs")


async def create(*, caller: Caller, registry: ModelRegistry, values: ConfigChanges) -> ModelConfig:
    """Add a config (admin); its provider must be one the registry knows."""
    authorize_change(caller=caller)
    fields = values.given()
    for required in ("provider", "model_name", "model_version"):
        if required not in fields:
            raise Invalid("is required", field=required)
    fields.setdefault("parameters", {})
    check_fields(fields)
    config = ModelConfig(**{k: v for k, v in fields.items() if k != "is_default"})
    registry.validate(spec_of(config))
    async with in_transaction():
        if fields.get("is_default"):
            await ModelConfig.filter(is_default=True).update(is_default=False)
            config.is_default = True
        await config.save()
    await logs.record(
        level=LogLevel.INFO,
        event="model_config.created",
        message=f"model config {config.model_name} ({config.provider}) created by {caller.name}",
        actor_id=caller.user_id,
        details={"config_id": str(config.id), "values": fields},
    )
    return config


async def update(
    *, caller: Caller, runtime: Runtime, config_id: str, changes: ConfigChanges
) -> ModelConfig:
    """Apply `changes` (admin), bump the version and tell every process to rebuild its client."""
    authorize_change(caller=caller)
    fields = changes.given()
    if not fields:
        raise Invalid("name at least one field to change", field="changes")
    check_fields(fields)
    if fields.get("is_default") is False:
        raise Invalid(
            "cannot be false: make another config the default instead", field="is_default"
        )
    async with in_transaction():
        config = await get(config_id=config_id)
        before = {name: getattr(config, name) for name in fields}
        for name, value in fields.items():
            setattr(config, name, value)
        runtime.models.validate(spec_of(config))
        if fields.get("is_default"):
            await ModelConfig.filter(is_default=True).exclude(id=config.id).update(is_default=False)
        config.version += 1
        await config.save()
    # Every process drops its client now; a process that misses this (its listener was
    # reconnecting, or the publish failed) still rebuilds at its next reply, which
    # compares versions: the change is made either way.
    try:
        await runtime.events.publish(
            CHANGES_TOPIC,
            {"kind": "config_changed", "config_id": str(config.id), "version": config.version},
        )
    except Exception as exc:
        logger.warning("could not announce the change of model config %s: %s", config.id, exc)
    # What really changed: a field sent with its current value is not a change.
    changed = {
        name: {"from": before[name], "to": value}
        for name, value in fields.items()
        if before[name] != value
    }
    await logs.record(
        level=LogLevel.INFO,
        event="model_config.updated",
        message=(
            f"model config {config.model_name} updated by {caller.name} to version "
            f"{config.version}: {', '.join(sorted(changed)) or 'no field'} changed"
        ),
        actor_id=caller.user_id,
        details={"config_id": str(config.id), "version": config.version, "changes": changed},
    )
    return config
