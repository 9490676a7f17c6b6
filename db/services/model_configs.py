"""AI model configurations: listing, creating, updating and rolling back (each bumps the
version and records it, with its actor, the fields it changed and a snapshot)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tortoise.transactions import in_transaction

from db.errors import Invalid, NotFound
from db.identity import Caller, require_admin
from db.models import LogLevel, ModelConfig, ModelConfigVersion
from db.ports import EventBroker, ModelRegistry, ModelSpec, Runtime
from db.services import config_rules, logs
from db.services.config_rules import check_fields
from db.services.ids import is_uuid
from db.services.pagination import PageRequest, Slice, Window

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
# What a version's snapshot holds: every field of the config (migration 4 backfilled the
# first versions with exactly these keys).
SNAPSHOT_FIELDS = (
    "provider",
    "model_name",
    "model_version",
    "parameters",
    "base_url",
    "api_key_env",
    "is_default",
)
# What a rollback restores: all but is_default, a flag across configs (making a config
# the default unsets another; restoring it would change a config nobody named).
RESTORED_FIELDS = tuple(name for name in SNAPSHOT_FIELDS if name != "is_default")
# Version numbers are 32-bit integers in the database.
MAX_VERSION = 2**31 - 1


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
        config = await ModelConfig.create(**BUILTIN_ECHO, parameters={}, is_default=True)
        # Seeded by `migrate` (the CLI) or at start-up: no actor.
        await _record_version(config, actor_id=None, changed=SNAPSHOT_FIELDS)
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


def authorize_history(*, caller: Caller) -> None:
    """Only admins read a config's versions; a door may ask before it reads their input."""
    require_admin(caller, "read the versions of model configs")


def snapshot_of(config: ModelConfig) -> dict[str, Any]:
    """The config's values as a version keeps them: never a secret (config_rules.public)."""
    return config_rules.public({name: getattr(config, name) for name in SNAPSHOT_FIELDS})


async def _record_version(
    config: ModelConfig, *, actor_id: str | None, changed: Iterable[str]
) -> ModelConfigVersion:
    """Store the config's current version; call it in the transaction of the change."""
    return await ModelConfigVersion.create(
        config_id=config.id,
        version=config.version,
        actor_id=actor_id,
        changed_fields=sorted(set(changed)),
        snapshot=snapshot_of(config),
    )


async def _get_locked(config_id: str) -> ModelConfig:
    """The config, its row locked to the end of the transaction (PostgreSQL): changes of
    one config take their version numbers one after the other."""
    query = ModelConfig.filter(id=config_id).select_for_update() if is_uuid(config_id) else None
    config = await query.first() if query is not None else None
    if config is None:
        raise NotFound("model config not found")
    return config


async def _unset_other_defaults(config: ModelConfig, *, actor_id: str | None) -> list[ModelConfig]:
    """Make every other default config a plain one: a change of each, so a version each."""
    others = list(
        await ModelConfig.filter(is_default=True)
        .exclude(id=config.id)
        .order_by("id")
        .select_for_update()
    )
    for other in others:
        other.is_default = False
        other.version += 1
        await other.save()
        await _record_version(other, actor_id=actor_id, changed=["is_default"])
    return others


async def _announce(events: EventBroker, configs: Iterable[ModelConfig]) -> None:
    """Tell every process to drop its clients of `configs`.

    A process that misses this (its listener was reconnecting, or the publish failed)
    still rebuilds at its next reply, which compares versions: the change is made either
    way."""
    for config in configs:
        try:
            await events.publish(
                CHANGES_TOPIC,
                {"kind": "config_changed", "config_id": str(config.id), "version": config.version},
            )
        except Exception as exc:
            logger.warning("could not announce the change of model config %s: %s", config.id, exc)


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
        unset: list[ModelConfig] = []
        if fields.get("is_default"):
            unset = await _unset_other_defaults(config, actor_id=caller.user_id)
            config.is_default = True
        await config.save()
        await _record_version(config, actor_id=caller.user_id, changed=SNAPSHOT_FIELDS)
    await logs.record(
        level=LogLevel.INFO,
        event="model_config.created",
        message=f"model config {config.model_name} ({config.provider}) created by {caller.name}",
        actor_id=caller.user_id,
        details={
            "config_id": str(config.id),
            "version": config.version,
            "values": fields,
            **_unset_details(unset),
        },
    )
    return config


def _unset_details(unset: list[ModelConfig]) -> dict[str, Any]:
    """What a log entry says of the configs a change made plain (no longer the default)."""
    if not unset:
        return {}
    return {"default_unset": [{"config_id": str(c.id), "version": c.version} for c in unset]}


@dataclass(frozen=True, slots=True)
class _Applied:
    """A change as `_apply` made it: the config, what really changed, the configs it
    made plain."""

    config: ModelConfig
    changed: dict[str, dict[str, Any]]
    unset: list[ModelConfig]


async def _apply(
    *, caller: Caller, registry: ModelRegistry, config: ModelConfig, fields: dict[str, Any]
) -> _Applied:
    """Set checked `fields` of the locked `config`, bump its version and record it, in the
    caller's transaction."""
    before = {name: getattr(config, name) for name in fields}
    for name, value in fields.items():
        setattr(config, name, value)
    registry.validate(spec_of(config))
    unset: list[ModelConfig] = []
    if fields.get("is_default"):
        unset = await _unset_other_defaults(config, actor_id=caller.user_id)
    config.version += 1
    await config.save()
    # What really changed: a field given its current value is not a change. The log
    # shows the values as a version does (a value written by hand may be a secret).
    shown_before, shown_after = config_rules.public(before), config_rules.public(fields)
    changed = {
        name: {"from": shown_before[name], "to": shown_after[name]}
        for name, value in fields.items()
        if before[name] != value
    }
    await _record_version(config, actor_id=caller.user_id, changed=changed)
    return _Applied(config=config, changed=changed, unset=unset)


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
        applied = await _apply(
            caller=caller,
            registry=runtime.models,
            config=await _get_locked(config_id),
            fields=fields,
        )
    config, changed = applied.config, applied.changed
    await _announce(runtime.events, [config, *applied.unset])
    await logs.record(
        level=LogLevel.INFO,
        event="model_config.updated",
        message=(
            f"model config {config.model_name} updated by {caller.name} to version "
            f"{config.version}: {', '.join(sorted(changed)) or 'no field'} changed"
        ),
        actor_id=caller.user_id,
        details={
            "config_id": str(config.id),
            "version": config.version,
            "changes": changed,
            **_unset_details(applied.unset),
        },
    )
    return config


async def rollback(
    *, caller: Caller, runtime: Runtime, config_id: str, version: int
) -> ModelConfig:
    """Give the config the values of one of its versions again (admin), as a new version.

    Every field but is_default is restored (see RESTORED_FIELDS). The version number still
    goes up, also when the values equal the current ones: a rollback is always a recorded
    change, and every process uses the restored values from its next reply."""
    authorize_change(caller=caller)
    in_range = isinstance(version, int) and not isinstance(version, bool) and version >= 1
    if not in_range or version > MAX_VERSION:
        raise Invalid(f"must be an integer from 1 to {MAX_VERSION}", field="version")
    async with in_transaction():
        # The lock first: a rollback and another change of the config wait for each other.
        config = await _get_locked(config_id)
        old = await ModelConfigVersion.get_or_none(config_id=config.id, version=version)
        if old is None:
            raise NotFound(f"model config version {version} not found")
        fields = {name: old.snapshot[name] for name in RESTORED_FIELDS if name in old.snapshot}
        # Today's rules: a value a rule refuses now (a provider this server lacks, a value
        # the snapshot could only hold redacted) is not restored.
        try:
            ConfigChanges(**fields).given()
            check_fields(fields)
            applied = await _apply(
                caller=caller, registry=runtime.models, config=config, fields=fields
            )
        except Invalid as exc:
            raise Invalid(f"cannot be restored: {exc.message}", field="version") from None
    config, changed = applied.config, applied.changed
    await _announce(runtime.events, [config])
    await logs.record(
        level=LogLevel.INFO,
        event="model_config.rolled_back",
        message=(
            f"model config {config.model_name} rolled back to version {version} by "
            f"{caller.name}, now version {config.version}: "
            f"{', '.join(sorted(changed)) or 'no field'} changed"
        ),
        actor_id=caller.user_id,
        details={
            "config_id": str(config.id),
            "version": config.version,
            "restored_version": version,
            "changes": changed,
        },
    )
    return config


@dataclass(frozen=True, slots=True)
class VersionPage:
    versions: list[ModelConfigVersion]
    total: int


# A config's versions, newest first: version numbers only grow.
VERSION_ORDER = "-version"


async def versions(*, caller: Caller, config_id: str, page: PageRequest) -> VersionPage:
    """A config's versions, newest first, one page of them (admin)."""
    authorize_history(caller=caller)
    config = await _get(config_id)
    query = ModelConfigVersion.filter(config_id=config.id)
    total = await query.count()
    rows = await query.order_by(VERSION_ORDER).offset(page.offset).limit(page.page_size)
    return VersionPage(versions=list(rows), total=total)


async def version_window(
    *, caller: Caller, config_id: str, page: Slice, after: int | None = None
) -> Window[ModelConfigVersion]:
    """A config's versions, newest first, after the version `after` (admin), for Relay
    connections."""
    authorize_history(caller=caller)
    config = await _get(config_id)
    query = ModelConfigVersion.filter(config_id=config.id)
    if after is not None:
        query = query.filter(version__lt=after)
    rows = list(await query.order_by(VERSION_ORDER).limit(page.size + 1))
    return Window(
        items=rows[: page.size], has_next=len(rows) > page.size, has_previous=after is not None
    )


async def count_versions(*, caller: Caller, config_id: str) -> int:
    """How many versions the config has (admin)."""
    authorize_history(caller=caller)
    config = await _get(config_id)
    return await ModelConfigVersion.filter(config_id=config.id).count()
