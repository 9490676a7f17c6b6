"""Migration 4's backfill of config versions: each config's values as its version 1.

Built in Python, not in SQL, so each snapshot goes through the same redaction as every
later version (`config_rules.public`): a config written before today's rules (a key in
its parameters, credentials in its URL) must not keep that secret in its history."""

from __future__ import annotations

from typing import Any

import orjson
from tortoise import BaseDBAsyncClient

from db.services.config_rules import public

_READ = (
    'SELECT "id", "version", "updated_at", "provider", "model_name", "model_version",'
    ' "parameters", "base_url", "api_key_env", "is_default" FROM "model_configs"'
)


def _literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


async def first_versions_sql(db: BaseDBAsyncClient) -> str:
    """INSERT statements of every config's first version (none without configs)."""
    statements = []
    for row in await db.execute_query_dict(_READ):
        parameters = row["parameters"]
        if isinstance(parameters, str | bytes):
            parameters = orjson.loads(parameters)
        snapshot = public(
            {
                "provider": row["provider"],
                "model_name": row["model_name"],
                "model_version": row["model_version"],
                "parameters": parameters,
                "base_url": row["base_url"],
                "api_key_env": row["api_key_env"],
                "is_default": bool(row["is_default"]),
            }
        )
        statements.append(
            'INSERT INTO "model_config_versions" ("config_id", "version", "created_at",'
            ' "actor_id", "changed_fields", "snapshot") VALUES ('
            f"{_literal(row['id'])}, {int(row['version'])}, {_literal(row['updated_at'])},"
            f" NULL, '[]', {_literal(orjson.dumps(snapshot).decode())});"
        )
    return "\n".join(statements)
