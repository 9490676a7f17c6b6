from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from db.fields import AnyJSONField

if TYPE_CHECKING:
    from db.models.model_configs import ModelConfig


class ModelConfigVersion(Model):
    """A model config as one change (create, update, rollback) left it."""

    id = fields.BigIntField(primary_key=True)
    config: fields.ForeignKeyRelation[ModelConfig] = fields.ForeignKeyField(
        "models.ModelConfig", related_name="versions", on_delete=fields.CASCADE
    )
    version = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)
    # The acting user's id as text (entries outlive users); null for the CLI and migrations.
    actor_id = fields.CharField(max_length=36, null=True)
    changed_fields = AnyJSONField(default=list)
    snapshot = AnyJSONField(description="every field of the config, never a secret")

    config_id: str

    class Meta:
        table = "model_config_versions"
        unique_together = (("config_id", "version"),)
