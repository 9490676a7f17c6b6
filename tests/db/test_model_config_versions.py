"""Model config versions: every change (create, update, rollback, the seeded echo) stores a
version row with its actor, the fields it changed and a snapshot, in the change's own
transaction; a rollback is a new version with the old values."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from tortoise.exceptions import IntegrityError

from db.errors import Forbidden, Invalid, NotFound
from db.identity import Caller
from db.models import LogEntry, ModelConfig, ModelConfigVersion, Role
from db.ports import Runtime
from db.services import model_configs
from db.services.config_rules import REDACTED
from db.services.model_configs import SNAPSHOT_FIELDS, ConfigChanges
from db.services.pagination import PageRequest, Slice
from tests.factories import Account, make_config

SECRET = "sk-live-THIS-MUST-NEVER-BE-STORED-IN-A-VERSION"


def caller_of(account: Account, *, admin: bool = True) -> Caller:
    return Caller(
        user_id=account.user_id, name=account.name, role=Role.ADMIN if admin else Role.USER
    )


def runtime_of(app: Starlette) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def rows(config_id: object) -> list[ModelConfigVersion]:
    """The config's version rows, oldest first."""
    return list(await ModelConfigVersion.filter(config_id=config_id).order_by("version"))


async def create(app: Starlette, admin: Account, **values: Any) -> ModelConfig:
    fields: dict[str, Any] = {"provider": "echo", "model_name": "m", "model_version": "1"}
    fields.update(values)
    return await model_configs.create(
        caller=caller_of(admin), registry=runtime_of(app).models, values=ConfigChanges(**fields)
    )


async def update(app: Starlette, admin: Account, config_id: object, **changes: Any) -> ModelConfig:
    return await model_configs.update(
        caller=caller_of(admin),
        runtime=runtime_of(app),
        config_id=str(config_id),
        changes=ConfigChanges(**changes),
    )


async def rollback(app: Starlette, who: Caller, config_id: object, version: int) -> ModelConfig:
    return await model_configs.rollback(
        caller=who, runtime=runtime_of(app), config_id=str(config_id), version=version
    )


async def test_the_seeded_echo_config_is_version_1_made_by_no_one(app: Starlette) -> None:
    default = await model_configs.get_default()  # seeded by ensure_builtin for each test

    [first] = await rows(default.id)

    assert (first.version, first.actor_id) == (1, None)
    assert first.changed_fields == sorted(SNAPSHOT_FIELDS)
    assert first.snapshot == {
        "provider": "echo",
        "model_name": "echo",
        "model_version": "1",
        "parameters": {},
        "base_url": None,
        "api_key_env": None,
        "is_default": True,
    }
    assert await model_configs.ensure_builtin() is False  # a config exists: nothing new
    assert len(await rows(default.id)) == 1


async def test_create_records_version_1_with_every_field(app: Starlette, admin: Account) -> None:
    config = await create(
        app, admin, parameters={"temperature": 0.5}, base_url="https://h.example/v1"
    )

    [first] = await rows(config.id)

    assert (config.version, first.version, first.actor_id) == (1, 1, admin.user_id)
    assert first.changed_fields == sorted(SNAPSHOT_FIELDS)
    assert set(first.snapshot) == set(SNAPSHOT_FIELDS)
    assert first.snapshot["parameters"] == {"temperature": 0.5}
    assert first.snapshot["base_url"] == "https://h.example/v1"
    assert first.snapshot["is_default"] is False


async def test_update_records_the_fields_that_really_changed(
    app: Starlette, admin: Account
) -> None:
    config = await create(app, admin, parameters={"temperature": 0.5})

    await update(app, admin, config.id, model_version="2", model_name="m", parameters={"top_p": 1})
    await update(app, admin, config.id, model_name="m")  # its current value: no real change

    _, second, third = await rows(config.id)
    assert (second.version, second.actor_id) == (2, admin.user_id)
    assert second.changed_fields == ["model_version", "parameters"]
    assert second.snapshot["model_version"] == "2"
    assert second.snapshot["parameters"] == {"top_p": 1}
    # Still a change (the version goes up, clients rebuild), of no field.
    assert (third.version, third.changed_fields) == (3, [])
    assert (await ModelConfig.get(id=config.id)).version == 3


async def test_a_new_default_unsets_the_old_one_as_a_version_of_it(
    app: Starlette, admin: Account
) -> None:
    old_default = await model_configs.get_default()

    made = await create(app, admin, is_default=True)

    after = await ModelConfig.get(id=old_default.id)
    assert (after.is_default, after.version) == (False, 2)
    last = (await rows(old_default.id))[-1]
    assert (last.version, last.actor_id, last.changed_fields) == (2, admin.user_id, ["is_default"])
    assert last.snapshot["is_default"] is False
    # And back, through an update of the first one.
    await update(app, admin, old_default.id, is_default=True)
    made_rows = await rows(made.id)
    assert [(row.version, row.snapshot["is_default"]) for row in made_rows] == [
        (1, True),
        (2, False),
    ]
    assert made_rows[-1].changed_fields == ["is_default"]


async def test_rollback_restores_the_values_as_a_new_version(
    app: Starlette, admin: Account
) -> None:
    config = await create(app, admin, parameters={"prefix": "Old: "}, api_key_env="OLD_KEY")
    await update(
        app,
        admin,
        config.id,
        model_version="2",
        parameters={"prefix": "New: "},
        base_url="https://new.example/v1",
        api_key_env=None,
    )

    rolled = await rollback(app, caller_of(admin), config.id, 1)

    assert rolled.version == 3
    stored = await ModelConfig.get(id=config.id)
    assert (stored.model_version, stored.parameters) == ("1", {"prefix": "Old: "})
    assert (stored.base_url, stored.api_key_env, stored.version) == (None, "OLD_KEY", 3)
    first, _, third = await rows(config.id)
    assert (third.version, third.actor_id) == (3, admin.user_id)
    assert third.changed_fields == ["api_key_env", "base_url", "model_version", "parameters"]
    assert third.snapshot == first.snapshot


async def test_rollback_to_the_current_values_still_makes_a_version(
    app: Starlette, admin: Account
) -> None:
    config = await create(app, admin)

    rolled = await rollback(app, caller_of(admin), config.id, 1)
    again = await rollback(app, caller_of(admin), config.id, 2)  # the rollback itself

    assert (rolled.version, again.version) == (2, 3)
    versions = await rows(config.id)
    assert [(row.version, row.changed_fields) for row in versions[1:]] == [(2, []), (3, [])]
    assert versions[0].snapshot == versions[1].snapshot == versions[2].snapshot


async def test_rollback_leaves_is_default_as_it_is(app: Starlette, admin: Account) -> None:
    old_default = await model_configs.get_default()
    made = await create(app, admin, is_default=True, model_version="1")
    await update(app, admin, made.id, model_version="2")
    await update(app, admin, old_default.id, is_default=True)  # `made` is plain now: version 3

    await rollback(app, caller_of(admin), made.id, 1)  # version 1 was the default

    after = await ModelConfig.get(id=made.id)
    assert (after.model_version, after.is_default, after.version) == ("1", False, 4)
    assert (await model_configs.get_default()).id == old_default.id
    last = (await rows(made.id))[-1]
    assert last.changed_fields == ["model_version"]
    assert last.snapshot["is_default"] is False


async def test_rollback_logs_who_did_it(app: Starlette, admin: Account) -> None:
    config = await create(app, admin)
    await update(app, admin, config.id, model_name="renamed")

    await rollback(app, caller_of(admin), config.id, 1)

    entry = await LogEntry.get(event="model_config.rolled_back")
    assert entry.actor_id == admin.user_id
    assert entry.details is not None
    assert entry.details["config_id"] == str(config.id)
    assert (entry.details["version"], entry.details["restored_version"]) == (3, 1)
    assert entry.details["changes"] == {"model_name": {"from": "renamed", "to": "m"}}
    assert admin.name in entry.message and "version 1" in entry.message


async def test_rollback_is_for_admins_and_checks_what_it_names(
    app: Starlette, admin: Account, alice: Account
) -> None:
    config = await create(app, admin)

    for config_id in (str(config.id), str(uuid.uuid4())):  # a user learns nothing
        with pytest.raises(Forbidden):
            await rollback(app, caller_of(alice, admin=False), config_id, 1)
    for version in (0, -1, 2**31, 2**63):
        with pytest.raises(Invalid) as invalid:
            await rollback(app, caller_of(admin), config.id, version)
        assert invalid.value.field == "version"
    for version in (2, 2**31 - 1):
        with pytest.raises(NotFound, match=f"version {version} "):
            await rollback(app, caller_of(admin), config.id, version)
    for config_id in (str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(NotFound, match="model config not found"):
            await rollback(app, caller_of(admin), config_id, 1)
    assert [row.version for row in await rows(config.id)] == [1]


async def test_a_version_today_s_rules_refuse_is_not_restored(
    app: Starlette, admin: Account
) -> None:
    config = await create(app, admin, provider="flaky")
    await update(app, admin, config.id, provider="echo")
    # What the snapshot names is no longer valid (as if the provider had been removed).
    await ModelConfigVersion.filter(config_id=config.id, version=1).update(
        snapshot={**(await rows(config.id))[0].snapshot, "provider": "gone"}
    )

    with pytest.raises(Invalid) as invalid:
        await rollback(app, caller_of(admin), config.id, 1)

    assert invalid.value.field == "version"
    assert "provider" in invalid.value.reason
    assert (await ModelConfig.get(id=config.id)).version == 2
    assert len(await rows(config.id)) == 2


async def test_a_snapshot_never_holds_a_secret(app: Starlette, admin: Account) -> None:
    # A row written by hand, past every rule the service checks.
    config = await make_config(
        parameters={
            "api_key": SECRET,
            "temperature": 0.1,
            "extra_headers": {"X-Api-Key": SECRET, "X-Team": "blue"},
            "nested": [{"access_token": SECRET}],
        },
        base_url=f"https://user:{SECRET}@models.example/v1",
        api_key_env=SECRET,
    )

    await update(app, admin, config.id, model_version="2")
    await update(app, admin, config.id, parameters={"temperature": 0.2})

    first, second = await rows(config.id)
    assert SECRET not in orjson.dumps([first.snapshot, second.snapshot]).decode()
    assert first.snapshot["parameters"] == {
        "api_key": REDACTED,
        "temperature": 0.1,
        "extra_headers": {"X-Api-Key": REDACTED, "X-Team": "blue"},
        "nested": [{"access_token": REDACTED}],
    }
    assert (first.snapshot["base_url"], first.snapshot["api_key_env"]) == (REDACTED, REDACTED)
    assert set(first.snapshot) == set(SNAPSHOT_FIELDS)
    logged = [entry.details for entry in await LogEntry.filter(event="model_config.updated")]
    assert SECRET not in orjson.dumps(logged).decode()
    # A redacted value is never restored as if it were the config's.
    with pytest.raises(Invalid) as invalid:
        await rollback(app, caller_of(admin), config.id, 2)
    assert invalid.value.field == "version"
    assert SECRET not in invalid.value.message


async def test_the_version_row_is_part_of_the_change(app: Starlette, admin: Account) -> None:
    config = await create(app, admin)
    # A row in the way of the next version: its insert fails, and so must the change.
    await ModelConfigVersion.create(
        config_id=config.id, version=2, changed_fields=[], snapshot={"in": "the way"}
    )

    with pytest.raises(IntegrityError):
        await update(app, admin, config.id, model_version="2")
    with pytest.raises(IntegrityError):
        await rollback(app, caller_of(admin), config.id, 1)

    stored = await ModelConfig.get(id=config.id)
    assert (stored.version, stored.model_version) == (1, "1")


async def test_changes_at_once_take_one_version_each(app: Starlette, admin: Account) -> None:
    config = await create(app, admin)

    await asyncio.gather(
        *(update(app, admin, config.id, model_version=f"v{n}") for n in range(4)),
        rollback(app, caller_of(admin), config.id, 1),
    )

    assert [row.version for row in await rows(config.id)] == [1, 2, 3, 4, 5, 6]
    stored = await ModelConfig.get(id=config.id)
    assert stored.version == 6
    last = (await rows(config.id))[-1]
    assert last.snapshot["model_version"] == stored.model_version


async def test_versions_are_listed_newest_first_for_admins(
    app: Starlette, admin: Account, alice: Account
) -> None:
    config = await create(app, admin)
    for n in range(4):
        await update(app, admin, config.id, model_version=str(n + 2))
    root = caller_of(admin)

    first = await model_configs.versions(
        caller=root, config_id=str(config.id), page=PageRequest(page_size=2)
    )
    last = await model_configs.versions(
        caller=root, config_id=str(config.id), page=PageRequest(page_size=2, page_num=3)
    )
    window = await model_configs.version_window(
        caller=root, config_id=str(config.id), page=Slice(size=2), after=4
    )

    assert ([row.version for row in first.versions], first.total) == ([5, 4], 5)
    assert ([row.version for row in last.versions], last.total) == ([1], 5)
    assert [row.version for row in window.items] == [3, 2]
    assert (window.has_next, window.has_previous) == (True, True)
    assert await model_configs.count_versions(caller=root, config_id=str(config.id)) == 5
    user = caller_of(alice, admin=False)
    with pytest.raises(Forbidden):
        await model_configs.versions(caller=user, config_id=str(config.id), page=PageRequest())
    with pytest.raises(Forbidden):
        await model_configs.version_window(caller=user, config_id=str(config.id), page=Slice())
    for config_id in (str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(NotFound):
            await model_configs.versions(caller=root, config_id=config_id, page=PageRequest())
