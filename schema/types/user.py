from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from schema.context import Info
from schema.types.api_key import ApiKey
from schema.types.enums import Role
from schema.types.rows import from_row


@strawberry.type(description="Callers see themselves; admins see everyone.")
class User:
    id: strawberry.ID
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None = strawberry.field(
        description="Set once an admin disabled the user: none of their keys works."
    )

    @strawberry.field(description="The user's unrevoked keys, oldest first; never a secret.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        rows = await info.context.loaders.api_keys.load(str(self.id))
        return [ApiKey.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, row: models.User) -> User:
        return from_row(cls, row, role=Role(row.role))
