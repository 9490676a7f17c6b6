from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from schema.types.rows import from_row


@strawberry.type(description="An API key as listed: never its secret, nor its digest.")
class ApiKey:
    id: strawberry.ID
    prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    label: str
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="Updated at most once a minute.")
    revoked_at: datetime | None = strawberry.field(
        description="Set once revoked (lists leave revoked keys out)."
    )

    @classmethod
    def from_model(cls, row: models.ApiKey) -> ApiKey:
        return from_row(cls, row)
