"""Who is calling: the result of authentication, passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass

from db.models.users import Role


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    name: str
    role: Role
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
