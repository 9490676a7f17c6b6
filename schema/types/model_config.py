from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from db.services import model_configs
from db.services.pagination import Slice
from schema.context import Info
from schema.cursors import parse_version_cursor, version_cursor
from schema.types.connection import Connection, Edge
from schema.types.model_config_version import ModelConfigVersion
from schema.types.rows import from_row


@strawberry.type(description="How to reach one AI model. Never holds a secret.")
class ModelConfig:
    id: strawberry.ID = strawberry.field(description="The REST config_id.")
    model_name: str
    model_version: str
    provider: str = strawberry.field(description='e.g. "echo", "openai"')
    parameters: JSON = strawberry.field(description="Model parameters; never a secret.")
    base_url: str | None = strawberry.field(description="Endpoint of a network provider.")
    api_key_env: str | None = strawberry.field(
        description="NAME of the environment variable holding the key (never the key)."
    )
    is_default: bool = strawberry.field(
        description=(
            "The config of sessions created without one; making another the default unsets "
            "it. rollbackModelConfig leaves it as it is."
        )
    )
    version: int = strawberry.field(
        description="Bumped by every change (update, rollback); clients rebuild."
    )
    updated_at: datetime

    @strawberry.field(
        description=(
            "Every change of the config (create, update, rollback), newest first; admins "
            "only (FORBIDDEN for others). rollbackModelConfig restores a version."
        )
    )
    async def versions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ModelConfigVersion]:
        caller = await info.context.caller()
        model_configs.authorize_history(caller=caller)  # before reading the admin's cursor
        config_id = str(self.id)
        window = await model_configs.version_window(
            caller=caller,
            config_id=config_id,
            page=Slice.of(first=first, last=None),
            after=parse_version_cursor(after, "after"),
        )

        async def counter() -> int:
            return await model_configs.count_versions(caller=caller, config_id=config_id)

        return Connection.of(
            [
                Edge(cursor=version_cursor(row.version), node=ModelConfigVersion.from_model(row))
                for row in window.items
            ],
            has_next=window.has_next,
            has_previous=window.has_previous,
            counter=counter,
        )

    @classmethod
    def from_model(cls, row: models.ModelConfig) -> ModelConfig:
        return from_row(cls, row)
