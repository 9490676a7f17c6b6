from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from db.models.users import User


class ApiKey(Model):
    """A bearer credential; only a SHA-256 digest of the secret is stored."""

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_keys", on_delete=fields.CASCADE
    )
    # Keys are 256-bit random secrets, so a fast digest is safe and lookups hit a unique index.
    key_digest = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16, description="first characters, to recognise a key")
    label = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    user_id: str

    class Meta:
        table = "api_keys"
        indexes = (("user_id",),)
