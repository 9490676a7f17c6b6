"""chat-gateway: serve | migrate | makemigrations | user ... | key ..."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import orjson
import uvicorn
from tortoise.exceptions import BaseORMException

from db import migrate as migrations
from db import scratch
from db.config import database_dialect
from db.errors import ServiceError
from db.models import Role
from db.services import users
from gateway import bootstrap
from gateway.settings import Settings, SettingsError, load_settings
from schema import sdl


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _fail_cleanly(exc: Exception) -> click.ClickException:
    if isinstance(exc, ServiceError):
        return click.ClickException(str(exc))
    return click.ClickException(
        f"database error: {exc}. Is DATABASE_URL right, and did `chat-gateway migrate` run?"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ai-chat-gateway: chat sessions and AI replies over GraphQL and REST."""


@main.command()
@click.option("--host", help="Interface to bind (HOST).")
@click.option("--port", type=int, help="Port to listen on (PORT).")
@click.option("--workers", type=int, help="Worker processes (WORKERS).")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations first.")
def serve(host: str | None, port: int | None, workers: int | None, no_migrate: bool) -> None:
    """Start the HTTP server (applies pending migrations first unless told not to)."""
    settings = _settings(host=host, port=port, workers=workers)
    if settings.migrate_on_start and not no_migrate:
        try:
            prepared = asyncio.run(
                bootstrap.prepare(settings, create_first_admin=settings.bootstrap_admin)
            )
        except (BaseORMException, OSError) as exc:
            raise _fail_cleanly(exc) from exc
        for name in prepared.applied:
            click.echo(f"applied migration {name}", err=True)
        if prepared.first_admin is not None:
            click.echo(
                "First admin created (shown once; set BOOTSTRAP_ADMIN=false to skip):\n"
                f"  user_id: {prepared.first_admin.key.user_id}\n"
                f"  api_key: {prepared.first_admin.secret}"
            )
    click.echo(f"serving on http://{settings.host}:{settings.port}", err=True)
    sys.stdout.flush()
    uvicorn.run(
        "gateway.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
        proxy_headers=True,
    )


@main.command()
def migrate() -> None:
    """Apply pending migrations to DATABASE_URL and seed the built-in echo model."""
    settings = _settings()
    try:
        prepared = asyncio.run(bootstrap.prepare(settings))
    except (BaseORMException, OSError) as exc:
        raise _fail_cleanly(exc) from exc
    for name in prepared.applied:
        click.echo(f"applied migration {name}")
    if not prepared.applied:
        click.echo("database is up to date")
    if prepared.seeded_echo:
        click.echo("created the built-in echo model config (default)")


@main.command()
@click.argument("name")
@click.option(
    "--postgres-url",
    default="postgres://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="A PostgreSQL server where a scratch database may be created.",
)
def makemigrations(name: str, postgres_url: str) -> None:
    """Generate the next migration for BOTH dialects from model changes (developers)."""
    with scratch.sqlite_database() as sqlite_url, scratch.postgres_database(postgres_url) as pg_url:
        for url in (sqlite_url, pg_url):
            # Tortoise caches SQL per dialect for the whole process: one process per dialect.
            result = subprocess.run(
                [sys.executable, "-m", "gateway.cli", "makemigration-for", url, name],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise click.ClickException(result.stderr.strip() or result.stdout.strip())
            click.echo(result.stdout.strip())


@main.command("makemigration-for", hidden=True)
@click.argument("database_url")
@click.argument("name")
def makemigration_for(database_url: str, name: str) -> None:
    """Generate one dialect's migration against a scratch database."""
    generated = asyncio.run(migrations.make(database_url, name=name))
    click.echo(f"{database_dialect(database_url)}: {generated or 'no changes'}")


@main.group("schema")
def schema_group() -> None:
    """The GraphQL schema."""


@schema_group.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("schema.graphql"),
    show_default=True,
    help="File to write; '-' for stdout.",
)
def schema_export(output: Path) -> None:
    """Write the GraphQL schema (SDL) that the server serves."""
    text = sdl()
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
def user_create(name: str, admin: bool) -> None:
    """Create a user; prints {"user_id", "api_key"} (the key is shown only now)."""
    settings = _settings()

    async def task() -> dict[str, str]:
        created, issued = await users.create(name=name, role=Role.ADMIN if admin else Role.USER)
        return {"user_id": str(created.id), "api_key": issued.secret}

    try:
        click.echo(orjson.dumps(bootstrap.run(settings, task)).decode())
    except (ServiceError, BaseORMException) as exc:
        raise _fail_cleanly(exc) from exc


@user.command("list")
def user_list() -> None:
    """List users as JSON."""
    settings = _settings()

    async def task() -> list[dict[str, str]]:
        return [
            {
                "user_id": str(u.id),
                "name": u.name,
                "role": str(u.role),
                "created_at": u.created_at.isoformat(),
            }
            for u in await users.list_all()
        ]

    try:
        _echo_json(bootstrap.run(settings, task))
    except BaseORMException as exc:
        raise _fail_cleanly(exc) from exc


@main.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.argument("user_id")
@click.option("--label", default="", help="A note to recognise the key by.")
def key_create(user_id: str, label: str) -> None:
    """Issue another key for a user; prints {"key_id", "api_key"}."""
    settings = _settings()

    async def task() -> dict[str, str]:
        owner = await users.get(user_id=user_id)
        issued = await users.create_key(user=owner, label=label)
        return {"key_id": str(issued.key.id), "user_id": user_id, "api_key": issued.secret}

    try:
        click.echo(orjson.dumps(bootstrap.run(settings, task)).decode())
    except (ServiceError, BaseORMException) as exc:
        raise _fail_cleanly(exc) from exc


@key.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
def key_list(user_id: str | None) -> None:
    """List keys (never the secret) as JSON."""
    settings = _settings()

    async def task() -> list[dict[str, Any]]:
        return [
            {
                "key_id": str(k.id),
                "user_id": str(k.user_id),
                "prefix": k.prefix,
                "label": k.label,
                "created_at": k.created_at.isoformat(),
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in await users.list_keys(user_id=user_id)
        ]

    try:
        _echo_json(bootstrap.run(settings, task))
    except BaseORMException as exc:
        raise _fail_cleanly(exc) from exc


@key.command("revoke")
@click.argument("key_id_or_prefix")
def key_revoke(key_id_or_prefix: str) -> None:
    """Revoke a key by its id or its prefix; it stops working at once, in every process."""
    settings = _settings()

    async def task() -> str:
        revoked = await users.revoke_key(key_id_or_prefix=key_id_or_prefix)
        return str(revoked.id)

    try:
        click.echo(f"revoked key {bootstrap.run(settings, task)}")
    except (ServiceError, BaseORMException) as exc:
        raise _fail_cleanly(exc) from exc


if __name__ == "__main__":
    main()
