"""AI model configurations: listing, creating, updating (which bumps the version)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

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


class Unchanged(enum.Enum):
    """The value of a field a change leaves as it is (None sets a field to null)."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED
# The fields a config may go without (null); the others always have a value.
NULLABLE = frozenset({"base_url", "api_key_env"})


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """The fields a create or update sets: UNCHANGED leaves a field as it is (or at its
    default), None clears a nullable field (see NULLABLE) and is refused for the others."""

    model_name: str | Unchanged | None = UNCHANGED
    model_version: str | Unchanged | None = UNCHANGED
    parameters: Mapping[str, Any] | Unchanged | None = UNCHANGED
    provider: str | Unchanged | None = UNCHANGED
    base_url: str | Unchanged | None = UNCHANGED
    api_key_env: str | Unchanged | None = UNCHANGED
    is_default: bool | Unchanged | None = UNCHANGED

    def given(self) -> dict[str, Any]:
        """The fields to set, checked for nulls where a value is required."""
        given = {
            name: getattr(self, name)
            for name in self.__slots__
            if getattr(self, name) is not UNCHANGED
        }
        for name, value in given.items():
            if value is None and name not in NULLABLE:
                raise Invalid("must not be null", field=name)
        return given


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


# Every authenticated caller reads every config: a config holds no secret (its key is
# in the environment), and users choose a config for their sessions. A `Caller` exists
# only once authenticated, so taking one is the rule.


# The order of `list_all`: oldest first.
LIST_ORDER = ("created_at", "id")


async def list_all(*, caller: Caller) -> list[ModelConfig]:
    """Every config, oldest first."""
    return list(await ModelConfig.all().order_by(*LIST_ORDER))


async def get(*, caller: Caller, config_id: str) -> ModelConfig:
    """One config; `NotFound` for an unknown or malformed id."""
    return await _get(config_id)


async def get_many(*, caller: Caller, config_ids: Sequence[str]) -> list[ModelConfig]:
    """The configs of `config_ids` (unknown ids are left out)."""
    return list(await ModelConfig.filter(id__in=[c for c in config_ids if is_uuid(c)]))


async def _get(config_id: str) -> ModelConfig:
    config = await ModelConfig.get_or_none(id=config_id) if is_uuid(config_id) else None
    if config is None:
        raise NotFound("model config not found")
    return config


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
        config = await _get(config_id)
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
