"""Getting a database ready: migrations, the built-in model config, a first admin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from tortoise import Tortoise

from db import migrate
from db.models import Role
from db.services import model_configs, users
from db.services.users import IssuedKey
from gateway.settings import Settings

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    applied: list[str]
    seeded_echo: bool
    first_admin: IssuedKey | None = None


@asynccontextmanager
async def orm(settings: Settings) -> AsyncIterator[None]:
    """Tortoise initialised for a command-line task."""
    settings.prepare_storage()
    await Tortoise.init(config=settings.tortoise)
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def prepare(settings: Settings, *, create_first_admin: bool = False) -> Prepared:
    """Apply pending migrations, seed the `echo` default, and maybe create a first admin
    (never in production, where a key printed to the console could end up in log storage)."""
    settings.prepare_storage()
    applied = await migrate.upgrade(settings.database_url)
    async with orm(settings):
        seeded = await model_configs.ensure_builtin()
        first_admin = None
        if create_first_admin and await users.count() == 0:
            if settings.production:
                logger.warning(
                    "production mode: no first admin is created; "
                    "run `chat-gateway user create NAME --admin` to create one"
                )
            else:
                _, first_admin = await users.create(name="admin", role=Role.ADMIN)
    return Prepared(applied=applied, seeded_echo=seeded, first_admin=first_admin)


def run(settings: Settings, task: Callable[[], Awaitable[T]]) -> T:
    """Run one async task with the ORM initialised, from synchronous code."""

    async def main() -> T:
        async with orm(settings):
            return await task()

    return asyncio.run(main())
