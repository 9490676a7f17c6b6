from __future__ import annotations

import strawberry

from db import models
from schema.types.enums import Role
from schema.types.rows import from_row


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    role: Role

    @classmethod
    def from_model(cls, row: models.User) -> User:
        return from_row(cls, row, role=Role(row.role))
