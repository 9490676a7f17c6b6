"""Mutation resolvers: parse, call one service function, shape."""

from __future__ import annotations

from typing import Any

import strawberry

from db.errors import Invalid
from db.models import Role as StoredRole
from db.services import feedback, forks, live_replies, model_configs, sessions, turns, users
from schema.context import Info
from schema.types.api_key import ApiKey
from schema.types.enums import Role
from schema.types.inputs import (
    CreateModelConfigInput,
    CreateSessionInput,
    ForkSessionInput,
    RateMessageInput,
    RegenerateReplyInput,
    SendMessageInput,
    UpdateModelConfigInput,
    UpdateSessionInput,
)
from schema.types.message import Message
from schema.types.model_config import ModelConfig
from schema.types.payloads import (
    CreatedApiKey,
    CreatedUser,
    ForkSessionPayload,
    SendMessagePayload,
)
from schema.types.session import ChatSession
from schema.types.user import User


def _changes(
    values: UpdateModelConfigInput | CreateModelConfigInput,
) -> model_configs.ConfigChanges:
    """The fields the client gave, null included (left out: UNSET)."""
    given: dict[str, Any] = {
        name: value for name, value in vars(values).items() if value is not strawberry.UNSET
    }
    return model_configs.ConfigChanges(**given)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_session(
        self, info: Info, input: CreateSessionInput | None = None
    ) -> ChatSession:
        row = await sessions.create(
            caller=await info.context.caller(),
            model_config_id=input.model_config_id if input else None,
            user_id=input.user_id if input else None,
        )
        return ChatSession.from_model(row)

    @strawberry.mutation(
        description=(
            "Set or clear the title, switch the model config, archive or unarchive; fields "
            "left out are kept."
        )
    )
    async def update_session(
        self, info: Info, id: strawberry.ID, input: UpdateSessionInput
    ) -> ChatSession:
        row = await sessions.update(
            caller=await info.context.caller(), session_id=str(id), **input.changes()
        )
        return ChatSession.from_model(row)

    @strawberry.mutation(
        description=(
            "Delete the session and all its messages (a reply running in it is cancelled "
            "first); answers the deleted id."
        )
    )
    async def delete_session(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        deleted = await sessions.delete(
            runtime=info.context.runtime, caller=await info.context.caller(), session_id=str(id)
        )
        return strawberry.ID(deleted)

    @strawberry.mutation(description="Store the message, ask the model, store and return both.")
    async def send_message(self, info: Info, input: SendMessageInput) -> SendMessagePayload:
        result = await turns.send(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            request=input.to_request(),
        )
        return SendMessagePayload(
            user_message=Message.from_model(result.user_message),
            ai_message=Message.from_model(result.ai_message),
        )

    @strawberry.mutation(
        description=(
            "Ask the model again for the session's latest user message. The new reply takes "
            "the latest reply's place in the history (length and order stay); the earlier "
            "ones stay reachable through `variants`."
        )
    )
    async def regenerate_reply(self, info: Info, input: RegenerateReplyInput) -> Message:
        row = await turns.regenerate(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            request=input.to_request(),
        )
        return Message.from_model(row)

    @strawberry.mutation(
        description=(
            "A new session for the caller with the same model config and the history before "
            "the message; with `content`, that is sent there as the new user message and "
            "answered (the original session is untouched)."
        )
    )
    async def fork_session(self, info: Info, input: ForkSessionInput) -> ForkSessionPayload:
        result = await forks.fork(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            request=input.to_request(),
        )
        return ForkSessionPayload(
            session=ChatSession.from_model(result.session),
            user_message=Message.from_model(result.user_message) if result.user_message else None,
            ai_message=Message.from_model(result.ai_message) if result.ai_message else None,
        )

    @strawberry.mutation(
        description=(
            "Rate an AI message of a session the caller may see (their own rating: each "
            "user sees only theirs); a null rating clears it. Answers the message."
        )
    )
    async def rate_message(self, info: Info, id: strawberry.ID, input: RateMessageInput) -> Message:
        try:
            rated = await feedback.rate(
                caller=await info.context.caller(),
                message_id=str(id),
                rating=input.stored_rating(),
                note=input.note,
            )
        except Invalid as exc:
            if exc.field != "message_id":
                raise
            raise Invalid(exc.reason, field="id") from None  # this door's name for it
        # The rating just stored is what `feedback` answers, without reading it again.
        key = str(rated.message.id)
        info.context.loaders.feedback.prime(key, rated.feedback, force=True)
        return Message.from_model(rated.message)

    @strawberry.mutation(
        description=(
            "Stop the reply being generated for the session, whichever server runs it; "
            "what was said is stored as a reply with finish_reason cancelled. False if no "
            "reply was running."
        )
    )
    async def cancel_reply(self, info: Info, session_id: strawberry.ID) -> bool:
        return await live_replies.stop(
            runtime=info.context.runtime,
            caller=await info.context.caller(),
            session_id=str(session_id),
        )

    @strawberry.mutation(description="Admins. Every process uses the new values from now on.")
    async def update_model_config(
        self, info: Info, id: strawberry.ID, input: UpdateModelConfigInput
    ) -> ModelConfig:
        row = await model_configs.update(
            caller=await info.context.caller(),
            runtime=info.context.runtime,
            config_id=id,
            changes=_changes(input),
        )
        return ModelConfig.from_model(row)

    @strawberry.mutation(description="Admins.")
    async def create_model_config(self, info: Info, input: CreateModelConfigInput) -> ModelConfig:
        row = await model_configs.create(
            caller=await info.context.caller(),
            registry=info.context.runtime.models,
            values=_changes(input),
        )
        return ModelConfig.from_model(row)

    @strawberry.mutation(
        description=(
            "Admins. A new version of the config with the values of `version` (isDefault "
            "is left as it is: it is a flag across configs); the version number still goes "
            "up, and every process uses the restored values from its next reply. An unknown "
            "version is NOT_FOUND."
        )
    )
    async def rollback_model_config(
        self, info: Info, id: strawberry.ID, version: int
    ) -> ModelConfig:
        row = await model_configs.rollback(
            caller=await info.context.caller(),
            runtime=info.context.runtime,
            config_id=id,
            version=version,
        )
        return ModelConfig.from_model(row)

    @strawberry.mutation(description="A new key for the caller; its secret is shown only now.")
    async def create_api_key(self, info: Info, label: str | None = None) -> CreatedApiKey:
        caller = await info.context.caller()
        issued = await users.create_key(
            caller=caller,
            user_id=caller.user_id,
            label=label or "",
            max_active=info.context.runtime.limits.max_keys_per_user,
        )
        return CreatedApiKey(key=issued.secret, api_key=ApiKey.from_model(issued.key))

    @strawberry.mutation(
        description=(
            "Revoke one of the caller's keys (admins: anyone's); it stops working at once in "
            "every process. Another user's key is NOT_FOUND, as is a key already revoked."
        )
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        row = await users.revoke_key(
            caller=await info.context.caller(),
            key_id_or_prefix=str(id),
            events=info.context.runtime.events,
        )
        return ApiKey.from_model(row)

    @strawberry.mutation(description="Admins. The first key's secret is shown only now.")
    async def create_user(self, info: Info, name: str, role: Role = Role.USER) -> CreatedUser:
        row, issued = await users.create(
            caller=await info.context.caller(), name=name, role=StoredRole(role.value)
        )
        return CreatedUser(
            user=User.from_model(row), key=issued.secret, api_key=ApiKey.from_model(issued.key)
        )

    @strawberry.mutation(
        description="Admins. At once in every process; the last enabled admin stays one."
    )
    async def set_user_role(self, info: Info, id: strawberry.ID, role: Role) -> User:
        row = await users.update_role(
            caller=await info.context.caller(),
            user_id=str(id),
            role=StoredRole(role.value),
            events=info.context.runtime.events,
        )
        return User.from_model(row)

    @strawberry.mutation(
        description=(
            "Admins. Every key of the user stops working at once in every process; their data "
            "stays. Not yourself, nor the last enabled admin."
        )
    )
    async def disable_user(self, info: Info, id: strawberry.ID) -> User:
        row = await users.disable(
            caller=await info.context.caller(), user_id=str(id), events=info.context.runtime.events
        )
        return User.from_model(row)
