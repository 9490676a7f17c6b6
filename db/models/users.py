from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(Model):
    """Someone who owns chat sessions; authenticates with API keys or, when signed in
    through an identity provider, with its tokens (found by `issuer` and `subject`)."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=10, default=Role.USER)
    created_at = fields.DatetimeField(auto_now_add=True)
    # A disabled user's keys and tokens stop working; its data stays.
    disabled_at = fields.DatetimeField(null=True)
    # The identity provider's `iss` and `sub` claims of a user created by JWT sign-in.
    issuer = fields.CharField(max_length=255, null=True)
    subject = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "users"
        indexes = (("created_at",),)
        unique_together = (("issuer", "subject"),)
