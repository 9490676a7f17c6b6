from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from db.services import sessions
from db.services.pagination import Slice
from schema.context import Info
from schema.cursors import parse_seq_cursor, seq_cursor
from schema.loaders import WindowKey, load_one
from schema.types.connection import Connection, Edge
from schema.types.message import Message
from schema.types.model_config import ModelConfig
from schema.types.rows import from_row
from schema.types.user import User


@strawberry.type(description="A conversation of one user with one model config.")
class ChatSession:
    id: strawberry.ID = strawberry.field(description="The REST session_id.")
    created_at: datetime
    message_count: int
    title: str | None = strawberry.field(
        description="Null until set; generated from the first user message."
    )
    updated_at: datetime = strawberry.field(description="The last message stored or change made.")
    archived: bool = strawberry.field(
        description="Archived sessions leave the default `sessions` list."
    )
    row: strawberry.Private[models.ChatSession]

    @strawberry.field
    async def user(self, info: Info) -> User:
        loader = info.context.loaders.users
        key = str(self.row.user_id)
        return User.from_model(await load_one(loader, key, missing="user not found"))

    @strawberry.field
    async def model_config(self, info: Info) -> ModelConfig:
        loader = info.context.loaders.model_configs
        key = str(self.row.model_config_id)
        return ModelConfig.from_model(await load_one(loader, key, missing="model config not found"))

    @strawberry.field(
        description=(
            "The message this session was forked at; null if it is no fork, or that "
            "message is gone or not the caller's to see."
        )
    )
    async def forked_from(self, info: Info) -> Message | None:
        if self.row.forked_from_id is None:
            return None
        row = await info.context.loaders.messages.load(str(self.row.forked_from_id))
        return None if row is None else Message.from_model(row)

    @strawberry.field(description="Oldest first; keyset-paginated in both directions.")
    async def messages(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Message]:
        key = WindowKey(
            session=self.row,
            page=Slice.of(first=first, last=last),
            after=parse_seq_cursor(after, "after"),
            before=parse_seq_cursor(before, "before"),
        )
        window = await info.context.loaders.message_windows.load(key)
        count = self.message_count

        async def counter() -> int:
            return count

        return Connection.of(
            [
                Edge(cursor=seq_cursor(row.position), node=Message.from_model(row))
                for row in window.items
            ],
            has_next=window.has_next,
            has_previous=window.has_previous,
            counter=counter,
        )

    @classmethod
    def from_model(cls, row: models.ChatSession) -> ChatSession:
        return from_row(cls, row, message_count=sessions.message_count(row), row=row)
