from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from db.services.turns import SendRequest

_ACTING_FOR = "Admins: act for this user (the caller's own id otherwise); as REST's user_id."


@strawberry.input
class CreateSessionInput:
    model_config_id: strawberry.ID | None = strawberry.field(
        default=None, description="Absent: the default model config."
    )
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"The session's owner. {_ACTING_FOR}"
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
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description=f"The session must be this user's. {_ACTING_FOR}"
    )

    def to_request(self) -> SendRequest:
        return SendRequest(
            session_id=self.session_id,
            content=self.content,
            metadata=self.metadata,
            user_id=self.user_id,
            client_message_id=self.client_message_id,
        )


# Config inputs tell a field left out (kept as it is) from null (cleared, where it may be).


@strawberry.input(description="Fields left out are kept; null clears baseUrl or apiKeyEnv.")
class UpdateModelConfigInput:
    model_name: str | None = strawberry.UNSET
    model_version: str | None = strawberry.UNSET
    parameters: JSON | None = strawberry.UNSET
    provider: str | None = strawberry.UNSET
    base_url: str | None = strawberry.UNSET
    api_key_env: str | None = strawberry.field(
        default=strawberry.UNSET, description="NAME of the environment variable holding the key."
    )
    is_default: bool | None = strawberry.UNSET


@strawberry.input
class CreateModelConfigInput:
    model_name: str
    model_version: str
    provider: str
    parameters: JSON | None = strawberry.UNSET
    base_url: str | None = strawberry.UNSET
    api_key_env: str | None = strawberry.field(
        default=strawberry.UNSET, description="NAME of the environment variable holding the key."
    )
    is_default: bool | None = strawberry.UNSET
