from __future__ import annotations

import strawberry

from db import models
from schema.types.enums import Role


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    role: Role

    @classmethod
    def from_model(cls, row: models.User) -> User:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, role=Role(str(row.role)))
