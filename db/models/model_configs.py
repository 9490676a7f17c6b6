from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from db.fields import AnyJSONField


class ModelConfig(Model):
    """How to reach one AI model; `version` is bumped by every change so clients rebuild."""

    id = fields.UUIDField(primary_key=True)
    provider = fields.CharField(max_length=50)
    model_name = fields.CharField(max_length=200)
    model_version = fields.CharField(max_length=100, default="")
    parameters = AnyJSONField(default=dict)
    base_url = fields.CharField(max_length=500, null=True)
    # The NAME of the environment variable holding the secret, never the secret itself.
    api_key_env = fields.CharField(max_length=200, null=True)
    is_default = fields.BooleanField(default=False)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "model_configs"
        indexes = (("is_default",),)
