"""The command group and what every command shares: settings, errors, the ORM."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson
from tortoise.exceptions import BaseORMException

from db.errors import ServiceError
from gateway import bootstrap
from gateway.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ai-chat-gateway: chat sessions and AI replies over GraphQL and REST."""


def settings(**overrides: Any) -> Settings:
    """The settings, with command-line values (None: not given) over the environment's."""
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def clean_failure(exc: Exception) -> click.ClickException:
    """A one-line message instead of a traceback for what a user can fix."""
    if isinstance(exc, ServiceError):
        return click.ClickException(str(exc))
    return click.ClickException(
        f"database error: {exc}. Is DATABASE_URL right, and did `chat-gateway migrate` run?"
    )


FIXABLE = (ServiceError, BaseORMException, OSError)


def run_with_orm(task: Callable[[], Awaitable[T]]) -> T:
    """Run a database task for a command, turning fixable failures into clean messages."""
    try:
        return bootstrap.run(settings(), task)
    except FIXABLE as exc:
        raise clean_failure(exc) from exc


def echo_json(value: Any, *, indent: bool = True) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    click.echo(orjson.dumps(value, option=option).decode())
