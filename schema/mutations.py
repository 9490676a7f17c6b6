"""Mutation resolvers: parse, call one service function, shape."""

from __future__ import annotations

from typing import Any

import strawberry

from db.services import live_replies, model_configs, sessions, turns
from schema.context import Info
from schema.types.inputs import (
    CreateModelConfigInput,
    CreateSessionInput,
    SendMessageInput,
    UpdateModelConfigInput,
)
from schema.types.message import Message
from schema.types.model_config import ModelConfig
from schema.types.payloads import SendMessagePayload
from schema.types.session import ChatSession


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
