"""chat-gateway: serve | migrate | schema export | user | key | db | config (and dev commands)."""

from gateway.cli.accounts import key, user
from gateway.cli.common import main
from gateway.cli.config import config_group
from gateway.cli.database import db_group
from gateway.cli.server import makemigration_for, makemigrations, migrate, schema_group, serve

__all__ = [
    "config_group",
    "db_group",
    "key",
    "main",
    "makemigration_for",
    "makemigrations",
    "migrate",
    "schema_group",
    "serve",
    "user",
]
