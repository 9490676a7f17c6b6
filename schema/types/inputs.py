from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from db.models import Rating as StoredRating
from db.services.feedback import MAX_NOTE_CHARS
from db.services.forks import ForkRequest
from db.services.turns import RegenerateRequest, SendRequest
from schema.types.feedback import Rating

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


@strawberry.input(description="Ask again for the session's latest user message.")
class RegenerateReplyInput:
    session_id: strawberry.ID
    client_message_id: str | None = strawberry.field(
        default=None,
        description="Retry key: a repeat returns the reply it made and stores nothing twice.",
    )

    def to_request(self) -> RegenerateRequest:
        return RegenerateRequest(
            session_id=self.session_id, client_message_id=self.client_message_id
        )


@strawberry.input(
    description=(
        "Fork at a message: with `content`, that replaces the (user) message and is "
        "answered (an edit); without, the history up to and including it is kept (a branch)."
    )
)
class ForkSessionInput:
    message_id: strawberry.ID
    content: str | None = None
    client_message_id: str | None = strawberry.field(
        default=None,
        description=(
            "Retry key: a repeat returns the same fork (and, after a model failure, asks "
            "again); it is also the key of the edited message in the fork."
        ),
    )

    def to_request(self) -> ForkRequest:
        return ForkRequest(
            message_id=self.message_id,
            content=self.content,
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


@strawberry.input(description="A null (or absent) rating clears the caller's rating and its note.")
class RateMessageInput:
    rating: Rating | None = None
    note: str | None = strawberry.field(
        default=None,
        description=f"At most {MAX_NOTE_CHARS:,} characters; needs a rating. Blank is no note.",
    )

    def stored_rating(self) -> StoredRating | None:
        return StoredRating(self.rating.value) if self.rating is not None else None


@strawberry.input(description="Fields left out are kept; a null title clears it.")
class UpdateSessionInput:
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 200 characters, not blank; null clears it."
    )
    model_config_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The next reply uses this config."
    )
    archived: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Archived sessions leave the default list."
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client gave, null included (those left out are kept)."""
        return {name: value for name, value in vars(self).items() if value is not strawberry.UNSET}
