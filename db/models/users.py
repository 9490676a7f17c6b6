from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(Model):
    """Someone who owns chat sessions; authenticates with API keys."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=10, default=Role.USER)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"
        indexes = (("created_at",),)
