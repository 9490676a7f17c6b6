"""Mutation resolvers: parse, call one service function, shape."""

from __future__ import annotations

from typing import Any

import strawberry

from db.models import Role as StoredRole
from db.services import live_replies, model_configs, sessions, turns, users
from schema.context import Info
from schema.types.api_key import ApiKey
from schema.types.enums import Role
from schema.types.inputs import (
    CreateModelConfigInput,
    CreateSessionInput,
    SendMessageInput,
    UpdateModelConfigInput,
)
from schema.types.message import Message
from schema.types.model_config import ModelConfig
from schema.types.payloads import CreatedApiKey, CreatedUser, SendMessagePayload
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
