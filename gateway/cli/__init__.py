"""chat-gateway: serve | migrate | makemigrations | schema export | user ... | key ..."""

from gateway.cli.accounts import key, user
from gateway.cli.common import main
from gateway.cli.server import makemigration_for, makemigrations, migrate, schema_group, serve

__all__ = [
    "key",
    "main",
    "makemigration_for",
    "makemigrations",
    "migrate",
    "schema_group",
    "serve",
    "user",
]
