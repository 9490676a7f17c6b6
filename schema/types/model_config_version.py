from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.context import Info
from schema.types.rows import from_row
from schema.types.user import User


@strawberry.type(description="A model config as one change (create, update, rollback) left it.")
class ModelConfigVersion:
    version: int = strawberry.field(description="The config's version number after the change.")
    created_at: datetime
    changed_fields: list[str] = strawberry.field(
        description=(
            "The fields the change changed, sorted, named as in the snapshot (model_version...); "
            "every field for a create, none for a change to the same values."
        )
    )
    snapshot: JSON = strawberry.field(
        description=(
            "The whole config at this version: provider, model_name, model_version, "
            "parameters, base_url, api_key_env, is_default. Never a secret."
        )
    )
    actor_id: strawberry.Private[str | None]

    @strawberry.field(
        description="Who made the change; null for the CLI or migrations, or a deleted user."
    )
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        row = await info.context.loaders.users.load(self.actor_id)
        return None if row is None else User.from_model(row)

    @classmethod
    def from_model(cls, row: models.ModelConfigVersion) -> ModelConfigVersion:
        return from_row(cls, row, changed_fields=list(row.changed_fields or []))
