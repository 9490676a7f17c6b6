"""user create | list | role | disable, key create | list | revoke | rotate."""

from __future__ import annotations

from typing import Any

import click

from db.models import ApiKey, Role, User
from db.pg_events import PostgresBroker
from db.ports import EventBroker
from db.services import users
from gateway.cli.common import echo_json, main, run_with_orm, settings


def _user_out(row: User) -> dict[str, Any]:
    return {
        "user_id": str(row.id),
        "name": row.name,
        "role": str(row.role),
        "created_at": row.created_at.isoformat(),
        "disabled_at": row.disabled_at.isoformat() if row.disabled_at else None,
    }


def _broker() -> EventBroker | None:
    """How the servers hear of a change at once: on PostgreSQL (they keep verified keys
    a while, with their owner's role); elsewhere each process looks keys up every time."""
    config = settings()
    return PostgresBroker(config.database_url) if config.dialect == "postgres" else None


def _key_out(row: ApiKey) -> dict[str, Any]:
    return {
        "key_id": str(row.id),
        "user_id": str(row.user_id),
        "prefix": row.prefix,
        "label": row.label,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
def user_create(name: str, admin: bool) -> None:
    """Create a user; prints {"user_id", "api_key"} (the key is shown only now)."""

    async def task() -> dict[str, str]:
        created, issued = await users.create(name=name, role=Role.ADMIN if admin else Role.USER)
        return {"user_id": str(created.id), "api_key": issued.secret}

    echo_json(run_with_orm(task), indent=False)


@user.command("list")
def user_list() -> None:
    """List users as JSON."""

    async def task() -> list[dict[str, Any]]:
        return [_user_out(row) for row in await users.list_all()]

    echo_json(run_with_orm(task))


@user.command("role")
@click.argument("user_id")
@click.argument("role", type=click.Choice([role.value for role in Role]))
def user_role(user_id: str, role: str) -> None:
    """Give a user another role; prints the user as JSON. The last enabled admin stays one."""

    async def task() -> dict[str, Any]:
        changed = await users.update_role(user_id=user_id, role=Role(role), events=_broker())
        return _user_out(changed)

    echo_json(run_with_orm(task), indent=False)


@user.command("disable")
@click.argument("user_id")
def user_disable(user_id: str) -> None:
    """Disable a user: their keys stop working at once, in every process; data stays."""

    async def task() -> dict[str, Any]:
        return _user_out(await users.disable(user_id=user_id, events=_broker()))

    echo_json(run_with_orm(task), indent=False)


@main.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.argument("user_id")
@click.option("--label", default="", help="A note to recognise the key by.")
def key_create(user_id: str, label: str) -> None:
    """Issue another key for a user; prints {"key_id", "user_id", "api_key"}."""

    async def task() -> dict[str, str]:
        issued = await users.create_key(user_id=user_id, label=label)
        return {"key_id": str(issued.key.id), "user_id": user_id, "api_key": issued.secret}

    echo_json(run_with_orm(task), indent=False)


@key.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
def key_list(user_id: str | None) -> None:
    """List keys (never the secret) as JSON."""

    async def task() -> list[dict[str, Any]]:
        return [_key_out(row) for row in await users.list_keys(user_id=user_id)]

    echo_json(run_with_orm(task))


@key.command("revoke")
@click.argument("key_id_or_prefix")
def key_revoke(key_id_or_prefix: str) -> None:
    """Revoke a key by its id or its prefix; it stops working at once, in every process."""

    async def task() -> str:
        revoked = await users.revoke_key(key_id_or_prefix=key_id_or_prefix, events=_broker())
        return str(revoked.id)

    click.echo(f"revoked key {run_with_orm(task)}")


@key.command("rotate")
@click.argument("key_id_or_prefix")
def key_rotate(key_id_or_prefix: str) -> None:
    """Replace a key: a new one for its user with its label, the old one revoked at once
    in every process; prints {"key_id", "user_id", "api_key", "revoked_key_id"}."""

    async def task() -> dict[str, str]:
        revoked, issued = await users.rotate_key(
            key_id_or_prefix=key_id_or_prefix, events=_broker()
        )
        return {
            "key_id": str(issued.key.id),
            "user_id": str(issued.key.user_id),
            "api_key": issued.secret,
            "revoked_key_id": str(revoked.id),
        }

    echo_json(run_with_orm(task), indent=False)
