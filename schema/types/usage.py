from __future__ import annotations

from enum import Enum

import strawberry

from db.services import usage
from schema.context import Info
from schema.types.model_config import ModelConfig
from schema.types.rows import from_row
from schema.types.user import User


@strawberry.enum(description="What one usage row adds up; groups combine.")
class UsageGroup(Enum):
    USER = "user"
    MODEL_CONFIG = "model_config"
    DAY = "day"

    def stored(self) -> usage.UsageGroup:
        return usage.UsageGroup(self.value)


@strawberry.type(
    description="One group's usage: every reply asked of a model, counted as it ended."
)
class UsageRow:
    @strawberry.field(
        description="Set when grouped by USER; null otherwise, or for a user that is gone."
    )
    async def user(self, info: Info) -> User | None:
        if self.row.user_id is None:
            return None
        found = await info.context.loaders.users.load(self.row.user_id)
        return None if found is None else User.from_model(found)

    @strawberry.field(
        description="Set when grouped by MODEL_CONFIG; null otherwise, or for a config that "
        "is gone."
    )
    async def model_config(self, info: Info) -> ModelConfig | None:
        if self.row.model_config_id is None:
            return None
        found = await info.context.loaders.model_configs.load(self.row.model_config_id)
        return None if found is None else ModelConfig.from_model(found)

    day: str | None = strawberry.field(description="YYYY-MM-DD (UTC) when grouped by DAY.")
    replies: int = strawberry.field(
        description="Replies the model gave: stored whole, or cancelled part way (what was "
        "said is stored). Failed replies are not among them."
    )
    failed_replies: int = strawberry.field(
        description="Replies the model did not give (an error or timeout; nothing stored)."
    )
    prompt_tokens: int = strawberry.field(
        description="As the provider's usage reported them; 0 for a reply without it."
    )
    completion_tokens: int = strawberry.field(
        description="As the provider's usage reported them; 0 for a reply without it."
    )
    average_latency_ms: float | None = strawberry.field(
        description="Mean time to reply, in ms, over `replies`; null when none has a latency."
    )
    row: strawberry.Private[usage.UsageRow]

    @classmethod
    def from_model(cls, row: usage.UsageRow) -> UsageRow:
        return from_row(cls, row, row=row)
