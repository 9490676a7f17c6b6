"""What the service layer needs from the outside world, as interfaces it owns, and the
little a provider needs to know of the gateway's own rules.

`gateway.providers` implements `ModelRegistry`/`ModelClient`; `db.events` (one process,
SQLite) and `db.pg_events` (PostgreSQL LISTEN/NOTIFY, every process) implement
`EventBroker`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A snapshot of one model config: everything a provider needs to build a client."""

    config_id: str
    version: int
    provider: str
    model_name: str
    model_version: str
    parameters: Mapping[str, Any]
    base_url: str | None = None
    api_key_env: str | None = None


# Parameters the gateway itself reads (the history budget); providers must not forward
# them upstream.
GATEWAY_PARAMETERS = frozenset({"system_prompt", "max_history_messages", "max_history_tokens"})


def estimate_tokens(text: str) -> int:
    """A provider-neutral estimate (about four characters a token for English text), the
    one the history budget counts in."""
    return max(1, (len(text) + 3) // 4)


def estimate_tokens_sql(column: str) -> str:
    """`estimate_tokens` of a text column, in SQL both databases run (lengths in
    characters; integer division of non-negative numbers rounds down in both)."""
    return f"(CASE WHEN {column} = '' THEN 1 ELSE (length({column}) + 3) / 4 END)"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of the model input."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """A piece of a reply as the model produces it."""

    text: str


@dataclass(frozen=True, slots=True)
class ModelReply:
    """A complete reply; `labels` are provider facts merged into the message metadata."""

    content: str
    finish_reason: str | None = None
    usage: Usage | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)


class ModelError(Exception):
    """A provider could not produce a reply. `str()` is safe to show to the caller."""

    def __init__(
        self, message: str, *, status: int | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.details = dict(details or {})


class ModelClient(Protocol):
    """A ready-to-use connection to one model, built from one `ModelSpec`."""

    async def complete(self, turns: Sequence[ChatTurn]) -> ModelReply:
        """Ask for a whole reply."""
        ...

    def stream(self, turns: Sequence[ChatTurn]) -> AsyncGenerator[ReplyDelta | ModelReply]:
        """Yield deltas as they arrive, then exactly one `ModelReply` with the whole text."""
        ...


class ModelRegistry(Protocol):
    """Builds and caches clients per config version."""

    def validate(self, spec: ModelSpec) -> None:
        """Raise `db.errors.Invalid`, naming the field, if the spec cannot work."""
        ...

    def lease(self, spec: ModelSpec) -> AbstractAsyncContextManager[ModelClient]:
        """A client for `spec`, kept open until the lease ends even if the config changes."""
        ...

    def retire(self, config_id: str, *, version: int) -> None:
        """The config is now at `version`: drop older clients once no reply uses them."""
        ...


class EventBroker(Protocol):
    """Publish small events to topics; subscribers receive what is published after they join."""

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None: ...

    def sql_channel(self) -> str | None:
        """The PostgreSQL channel this broker listens on, if any: a statement may then
        announce what it writes itself, `pg_notify(channel, '{"topic": ..., "event":
        {...}}')`, delivered when it commits, instead of a `publish` after it."""
        ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Join a topic; the iterator yields events until the context exits."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Business limits the doors do not decide."""

    max_message_chars: int = 32_000
    max_metadata_bytes: int = 16_384
    # Active API keys one user may hold: rate limits count per key, so without a cap a
    # user could multiply their allowance by making keys.
    max_keys_per_user: int = 20
    # How deep a JSON value a client sends (metadata) may nest: `[[1]]` is two deep.
    max_json_depth: int = 64
    max_history_messages: int = 50
    max_history_tokens: int = 24_000
    turn_wait_seconds: float = 300.0
    # A turn's lease (and a streamed reply's buffer) lasts this long unless renewed, so a
    # process that dies mid-reply blocks its session at most this long.
    turn_lease_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Runtime:
    """The ports a service call may use; each door passes the one built at start-up."""

    models: ModelRegistry
    events: EventBroker
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class ReplyReport:
    """How one model reply went: what an `Observer` counts."""

    provider: str
    config_id: str
    # "ok", "cancelled", or the kind of failure ("timeout", "upstream_status", ...).
    outcome: str
    seconds: float
    first_token_seconds: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Observer(Protocol):
    """Receives reports of the service layer's work (metrics); each call must be cheap and
    must never raise."""

    def reply_finished(self, report: ReplyReport) -> None: ...

    def log_written(self, *, level: str) -> None: ...
