"""Query resolvers: parse, call one service function, shape."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.errors import NotFound
from db.models import LogLevel as StoredLevel
from db.services import logs, model_configs, sessions, usage, users
from db.services.pagination import Slice
from schema.context import Info
from schema.cursors import key_cursor, parse_key_cursor
from schema.loaders import load_one
from schema.types.connection import Connection, Edge
from schema.types.enums import LogLevel
from schema.types.log_entry import LogEntry
from schema.types.model_config import ModelConfig
from schema.types.search import MessageSearchHit, search_messages
from schema.types.session import ChatSession
from schema.types.usage import UsageGroup, UsageRow
from schema.types.user import User


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated caller.")
    async def me(self, info: Info) -> User:
        caller = await info.context.caller()
        loader = info.context.loaders.users
        return User.from_model(await load_one(loader, caller.user_id, missing="user not found"))

    @strawberry.field(description="Null when absent or not the caller's.")
    async def session(self, info: Info, id: strawberry.ID) -> ChatSession | None:
        caller = await info.context.caller()
        try:
            row = await sessions.get(caller=caller, session_id=id)
        except NotFound:
            return None
        return ChatSession.from_model(row)

    @strawberry.field(
        description=(
            "The caller's sessions, newest first; userId for admins only. Unarchived ones by "
            "default; archived: true for the archived ones only, null for all."
        )
    )
    async def sessions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        user_id: strawberry.ID | None = None,
        archived: bool | None = False,
    ) -> Connection[ChatSession]:
        caller = await info.context.caller()
        window = await sessions.window(
            caller=caller,
            user_id=user_id,
            page=Slice.of(first=first, last=None),
            after=parse_key_cursor(after, "s", "after"),
            archived=archived,
        )

        async def counter() -> int:
            return await sessions.count(caller=caller, user_id=user_id, archived=archived)

        return Connection.of(
            [
                Edge(
                    cursor=key_cursor("s", row.created_at, row.id), node=ChatSession.from_model(row)
                )
                for row in window.items
            ],
            has_next=window.has_next,
            has_previous=window.has_previous,
            counter=counter,
        )

    search_messages: Connection[MessageSearchHit] = strawberry.field(
        resolver=search_messages,
        description="Full-text search over the messages the caller may see, best match first.",
    )

    @strawberry.field
    async def model_configs(self, info: Info) -> list[ModelConfig]:
        rows = await model_configs.list_all(caller=await info.context.caller())
        return [ModelConfig.from_model(row) for row in rows]

    @strawberry.field
    async def model_config(self, info: Info, id: strawberry.ID) -> ModelConfig | None:
        caller = await info.context.caller()
        try:
            return ModelConfig.from_model(await model_configs.get(caller=caller, config_id=id))
        except NotFound:
            return None

    @strawberry.field(description="Every user, newest first (admins).")
    async def users(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[User]:
        caller = await info.context.caller()
        window = await users.window(
            caller=caller,
            page=Slice.of(first=first, last=None),
            after=parse_key_cursor(after, "u", "after"),
        )

        async def counter() -> int:
            return await users.count(caller=caller)

        return Connection.of(
            [
                Edge(cursor=key_cursor("u", row.created_at, row.id), node=User.from_model(row))
                for row in window.items
            ],
            has_next=window.has_next,
            has_previous=window.has_previous,
            counter=counter,
        )

    @strawberry.field(description="System operation log, newest first (admins).")
    async def logs(
        self,
        info: Info,
        level: LogLevel | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[LogEntry]:
        caller = await info.context.caller()
        stored_level = StoredLevel(level.value) if level else None
        window = await logs.window(
            caller=caller,
            page=Slice.of(first=first, last=None),
            after=parse_key_cursor(after, "l", "after", integer_ids=True),
            level=stored_level,
            start_time=start_time,
            end_time=end_time,
        )

        async def counter() -> int:
            return await logs.count(
                caller=caller, level=stored_level, start_time=start_time, end_time=end_time
            )

        return Connection.of(
            [
                Edge(cursor=key_cursor("l", row.created_at, row.id), node=LogEntry.from_model(row))
                for row in window.items
            ],
            has_next=window.has_next,
            has_previous=window.has_previous,
            counter=counter,
        )

    @strawberry.field(
        description="Replies asked of models, added up per group (USER, MODEL_CONFIG, DAY; "
        "groups combine), ordered by day, user, then config. Users see their own usage "
        "(another's userId is FORBIDDEN); admins anyone's (userId) or everyone's (none). "
        "Times are UTC: startTime inclusive, endTime exclusive. An empty groupBy gives one "
        "row of totals; null is the default, [USER]."
    )
    async def usage(
        self,
        info: Info,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        user_id: strawberry.ID | None = None,
        model_config_id: strawberry.ID | None = None,
        group_by: list[UsageGroup] | None = (UsageGroup.USER,),  # type: ignore[assignment]
    ) -> list[UsageRow]:
        rows = await usage.report(
            caller=await info.context.caller(),
            start_time=start_time,
            end_time=end_time,
            user_id=user_id,
            model_config_id=model_config_id,
            group_by=(
                [group.stored() for group in group_by]
                if group_by is not None
                else (usage.UsageGroup.USER,)
            ),
        )
        return [UsageRow.from_model(row) for row in rows]
