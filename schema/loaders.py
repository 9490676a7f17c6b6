"""DataLoaders, created per operation (see context.OperationScope), batching by id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from strawberry.dataloader import DataLoader

from db.errors import NotFound
from db.identity import Caller
from db.models import ApiKey, ChatSession, Message, MessageFeedback, ModelConfig, User
from db.services import feedback, messages, model_configs, sessions, users, variants
from db.services.history_windows import windows
from db.services.pagination import Slice, Window


class _HasId(Protocol):
    @property
    def pk(self) -> object: ...


Row = TypeVar("Row", bound=_HasId)


CallerOf = Callable[[], Awaitable[Caller]]


def _by_id(
    fetch: Callable[..., Awaitable[list[Row]]], ids_name: str, caller: CallerOf
) -> Callable[[list[str]], Awaitable[list[Row | None]]]:
    """A batch function over a service's `get_many(caller=..., <ids_name>=...)`: rows the
    caller may not see are None, like rows that do not exist."""

    async def load(ids: list[str]) -> list[Row | None]:
        found = {str(row.pk): row for row in await fetch(caller=await caller(), **{ids_name: ids})}
        return [found.get(key) for key in ids]

    return load


async def load_one(loader: DataLoader[str, Row | None], key: str, *, missing: str) -> Row:
    """The row `key` through `loader`; `NotFound(missing)` if it is gone or the caller
    may not see it."""
    row = await loader.load(key)
    if row is None:
        raise NotFound(missing)
    return row


@dataclass(frozen=True)
class WindowKey:
    """One session's window request; equal keys share one result."""

    session: ChatSession
    page: Slice
    after: int | None
    before: int | None

    def cache_key(self) -> Hashable:
        return (str(self.session.id), self.session.last_seq, self.page, self.after, self.before)


async def _load_windows(keys: list[WindowKey]) -> list[Window[Message]]:
    # Requests with the same arguments go to the database together: one statement each.
    results: dict[Hashable, Window[Message]] = {}
    groups: dict[tuple[Slice, int | None, int | None], list[ChatSession]] = {}
    for key in keys:
        groups.setdefault((key.page, key.after, key.before), []).append(key.session)
    for (page, after, before), group in groups.items():
        found = await windows(group, page=page, after=after, before=before)
        for session in group:
            results[(str(session.id), session.last_seq, page, after, before)] = found[
                str(session.id)
            ]
    return [results[key.cache_key()] for key in keys]


def _keys_by_owner(caller: CallerOf) -> Callable[[list[str]], Awaitable[list[list[ApiKey]]]]:
    """A batch function of the unrevoked keys of each user the caller may see (none else)."""

    async def load(user_ids: list[str]) -> list[list[ApiKey]]:
        found: dict[str, list[ApiKey]] = {}
        for key in await users.list_active_keys(caller=await caller(), user_ids=user_ids):
            found.setdefault(str(key.user_id), []).append(key)
        return [found.get(user_id, []) for user_id in user_ids]

    return load


def _own_feedback(
    caller: CallerOf,
) -> Callable[[list[str]], Awaitable[list[MessageFeedback | None]]]:
    """A batch function of the caller's own rating of each message (None: not rated)."""

    async def load(message_ids: list[str]) -> list[MessageFeedback | None]:
        user_id = (await caller()).user_id
        found = await feedback.for_messages(user_id=user_id, message_ids=message_ids)
        return [found.get(message_id) for message_id in message_ids]

    return load


def _variants(caller: CallerOf) -> Callable[[list[str]], Awaitable[list[list[Message]]]]:
    """A batch function of each message's variants (see `variants.variants_of`)."""

    async def load(message_ids: list[str]) -> list[list[Message]]:
        found = await variants.variants_of(caller=await caller(), message_ids=message_ids)
        return [found[message_id] for message_id in message_ids]

    return load


class Loaders:
    """One operation's loaders; each asks the service for what the caller may see."""

    def __init__(self, caller: CallerOf) -> None:
        self.users: DataLoader[str, User | None] = DataLoader(
            _by_id(users.get_many, "user_ids", caller)
        )
        self.model_configs: DataLoader[str, ModelConfig | None] = DataLoader(
            _by_id(model_configs.get_many, "config_ids", caller)
        )
        self.sessions: DataLoader[str, ChatSession | None] = DataLoader(
            _by_id(sessions.get_many, "session_ids", caller)
        )
        self.messages: DataLoader[str, Message | None] = DataLoader(
            _by_id(messages.get_many, "message_ids", caller)
        )
        self.message_windows: DataLoader[WindowKey, Window[Message]] = DataLoader(
            _load_windows, cache_key_fn=WindowKey.cache_key
        )
        self.api_keys: DataLoader[str, list[ApiKey]] = DataLoader(_keys_by_owner(caller))
        self.feedback: DataLoader[str, MessageFeedback | None] = DataLoader(_own_feedback(caller))
        self.variants: DataLoader[str, list[Message]] = DataLoader(_variants(caller))
