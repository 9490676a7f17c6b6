"""user create | list, key create | list | revoke."""

from __future__ import annotations

from typing import Any

import click

from db.models import ApiKey, Role, User
from db.pg_events import PostgresBroker
from db.services import users
from gateway.cli.common import echo_json, main, run_with_orm, settings


def _user_out(row: User) -> dict[str, Any]:
    return {
        "user_id": str(row.id),
        "name": row.name,
        "role": str(row.role),
        "created_at": row.created_at.isoformat(),
    }


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


@main.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.argument("user_id")
@click.option("--label", default="", help="A note to recognise the key by.")
def key_create(user_id: str, label: str) -> None:
    """Issue another key for a user; prints {"key_id", "user_id", "api_key"}."""

    async def task() -> dict[str, str]:
        owner = await users.get(user_id=user_id)
        issued = await users.create_key(user=owner, label=label)
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
        # On PostgreSQL the servers hear of it at once (they keep verified keys a while).
        config = settings()
        events = PostgresBroker(config.database_url) if config.dialect == "postgres" else None
        return str((await users.revoke_key(key_id_or_prefix=key_id_or_prefix, events=events)).id)

    click.echo(f"revoked key {run_with_orm(task)}")
