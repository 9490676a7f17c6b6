from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.types.rows import from_row


@strawberry.type(description="How to reach one AI model. Never holds a secret.")
class ModelConfig:
    id: strawberry.ID = strawberry.field(description="The REST config_id.")
    model_name: str
    model_version: str
    provider: str = strawberry.field(description='e.g. "echo", "openai"')
    parameters: JSON = strawberry.field(description="Model parameters; never a secret.")
    base_url: str | None = strawberry.field(description="Endpoint of a network provider.")
    api_key_env: str | None = strawberry.field(
        description="NAME of the environment variable holding the key (never the key)."
    )
    is_default: bool
    version: int = strawberry.field(description="Bumped by every update; clients rebuild.")
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.ModelConfig) -> ModelConfig:
        return from_row(cls, row)
