from __future__ import annotations

import strawberry
from strawberry.scalars import JSON


@strawberry.input
class CreateSessionInput:
    model_config_id: strawberry.ID | None = strawberry.field(
        default=None, description="Absent: the default model config."
    )


@strawberry.input
class SendMessageInput:
    session_id: strawberry.ID
    content: str
    metadata: JSON | None = None
    client_message_id: str | None = strawberry.field(
        default=None,
        description="Retry key: a repeat stores nothing twice; after a model failure it re-asks.",
    )


@strawberry.input
class UpdateModelConfigInput:
    model_name: str | None = None
    model_version: str | None = None
    parameters: JSON | None = None
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = strawberry.field(
        default=None, description="NAME of the environment variable holding the key."
    )
    is_default: bool | None = None


@strawberry.input
class CreateModelConfigInput:
    model_name: str
    model_version: str
    provider: str
    parameters: JSON | None = None
    base_url: str | None = None
    api_key_env: str | None = strawberry.field(
        default=None, description="NAME of the environment variable holding the key."
    )
    is_default: bool | None = None
