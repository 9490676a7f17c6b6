"""serve, migrate, makemigrations, schema export."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

import click
import uvicorn

from db import migrate as migrations
from db import scratch
from db.config import database_dialect
from gateway import bootstrap
from gateway.cli.common import FIXABLE, clean_failure, main, settings
from gateway.http_protocol import BoundedHeadProtocol
from gateway.settings import Settings


@main.command()
@click.option("--host", help="Interface to bind (HOST).")
@click.option("--port", type=int, help="Port to listen on (PORT).")
@click.option("--workers", type=int, help="Worker processes (WORKERS).")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations first.")
def serve(host: str | None, port: int | None, workers: int | None, no_migrate: bool) -> None:
    """Start the HTTP server (applies pending migrations first unless told not to)."""
    config = settings(host=host, port=port, workers=workers)
    if config.metrics_enabled and (config.workers > 1 or "PROMETHEUS_MULTIPROC_DIR" in os.environ):
        _share_metrics()
    # Build the app once here: a setting it cannot work with stops us before anything
    # is migrated or any key is printed.
    from gateway.app import create_app

    create_app(config)
    first_admin_shown = False
    if config.migrate_on_start and not no_migrate:
        try:
            prepared = asyncio.run(
                bootstrap.prepare(config, create_first_admin=config.bootstrap_admin)
            )
        except FIXABLE as exc:
            raise clean_failure(exc) from exc
        for name in prepared.applied:
            _note(config, f"applied migration {name}")
        if prepared.first_admin is not None:
            click.echo(
                "First admin created (shown once; set BOOTSTRAP_ADMIN=false to skip):\n"
                f"  user_id: {prepared.first_admin.key.user_id}\n"
                f"  api_key: {prepared.first_admin.secret}"
            )
            first_admin_shown = True
    _note(config, f"serving on http://{config.host}:{config.port}")
    if config.console_enabled:
        how = "the api_key above" if first_admin_shown else "an API key"
        if config.jwt_enabled:
            how += " or a token"
        _note(config, f"web console: {browser_url(config.host, config.port)}/ (sign in with {how})")
    sys.stdout.flush()
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    # default handler restored (it restores this one), which would end the process as
    # killed by SIGTERM (status 143) after a clean stop: end it with status 0 instead.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "gateway.asgi:app",
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=config.log_level,
        # Our own handler (gateway.log_config) writes uvicorn's lines too, JSON or text;
        # the access line is the app's (gateway.observe): uvicorn's costs throughput.
        log_config=None,
        access_log=False,
        proxy_headers=True,
        http=BoundedHeadProtocol,
        ws_max_size=config.ws_max_message_bytes,
        # SIGTERM: stop accepting, give open requests and streams the grace period; the
        # app's shutdown then gives replies still running what is left of it.
        timeout_graceful_shutdown=max(1, round(config.shutdown_grace_seconds)),
    )


def browser_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to `host`: loopback for
    the wildcard addresses, brackets around an IPv6 address."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _note(config: Settings, line: str) -> None:
    """A start-up line on stdout, beside the logs: a log line with LOG_FORMAT=json (one
    JSON object each)."""
    if config.log_format == "json":
        logging.getLogger("gateway.serve").info(line)
    else:
        click.echo(line)


def _share_metrics() -> None:
    """Several workers: prometheus-client's multiprocess mode, in a fresh folder.

    Set before anything imports prometheus_client (it picks its value store on import);
    the workers inherit it, each writes its own files, and any one answers a scrape with
    the sum. The folder is new (or emptied) at every start: no former run's counts."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:  # the operator's folder: emptied of a former run's files
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return
    folder = tempfile.mkdtemp(prefix="chat-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@main.command()
def migrate() -> None:
    """Apply pending migrations to DATABASE_URL and seed the built-in echo model."""
    try:
        prepared = asyncio.run(bootstrap.prepare(settings()))
    except FIXABLE as exc:
        raise clean_failure(exc) from exc
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
    from schema import sdl  # building the schema costs time the other commands need not pay

    text = sdl()
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
