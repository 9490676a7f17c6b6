"""What a turn reports as it goes, to whichever door drives it."""

from __future__ import annotations

from dataclasses import dataclass

from db.models import Message


@dataclass(frozen=True, slots=True)
class UserMessageStored:
    """The question is stored (or was already, for a retry)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ReplyPiece:
    """A piece of the reply; `message_id` is the id the stored reply will have, `offset`
    where `text` starts in the whole reply, in characters."""

    message_id: str
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class AiMessageStored:
    """The reply is stored (or was already)."""

    message: Message


TurnEvent = UserMessageStored | ReplyPiece | AiMessageStored


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """For the run of the turn only (never passed on): the turn now holds the session's
    lease `lease`, the name a stop request gives it."""

    lease: str


@dataclass(frozen=True, slots=True)
class TurnResult:
    user_message: Message
    ai_message: Message
