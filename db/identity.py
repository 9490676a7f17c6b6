"""Who is calling: the result of authentication, passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass

from db.errors import Forbidden
from db.models.users import Role


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    name: str
    role: Role
    # What the caller signed in with, the unit rate limits count by: an API key's id, or
    # "jwt:<user id>" for an identity provider's token; "" for callers made in-process.
    credential: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def require_admin(caller: Caller, action: str) -> None:
    """Refuse `action` to anyone but an admin."""
    if not caller.is_admin:
        raise Forbidden(f"only admins may {action}", actor_id=caller.user_id)
