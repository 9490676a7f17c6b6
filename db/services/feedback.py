"""Feedback: each user's own rating (up or down, with an optional note) of AI messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import connections
from tortoise.exceptions import IntegrityError

from db.errors import Invalid, NotFound
from db.identity import Caller
from db.models import LogLevel, Message, MessageFeedback, MessageType, Rating
from db.models.rows import hydrator
from db.services import logs, messages
from db.services.ids import is_uuid
from db.services.text import text_problem
from db.sql import markers

MAX_NOTE_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class Rated:
    """The rated message, and the caller's rating of it now (None once cleared)."""

    message: Message
    feedback: MessageFeedback | None


# One statement, so two ratings of the same message by the same user at once cannot both
# insert (the second would break the unique key): the later one simply wins.
_UPSERT = """
INSERT INTO message_feedback (message_id, user_id, rating, note, created_at, updated_at)
VALUES ({0}, {1}, {2}, {3}, {4}, {4})
ON CONFLICT (message_id, user_id) DO UPDATE
SET rating = excluded.rating, note = excluded.note, updated_at = excluded.updated_at
RETURNING *
"""
_feedback_from_row = hydrator(MessageFeedback)


def _checked_note(rating: Rating | None, note: str | None) -> str | None:
    """The note to store: None for no note (blank text is no note either)."""
    if note is None:
        return None
    if len(note) > MAX_NOTE_CHARS:
        raise Invalid(f"must be at most {MAX_NOTE_CHARS} characters", field="note")
    if (problem := text_problem(note)) is not None:
        raise Invalid(problem, field="note")
    if not note.strip():
        return None
    if rating is None:
        # Clearing deletes the rating and its note: a note alone would be dropped silently.
        raise Invalid("needs a rating (a null rating clears the rating and its note)", field="note")
    return note


async def rate(
    *, caller: Caller, message_id: str, rating: Rating | None, note: str | None = None
) -> Rated:
    """Set, change or (rating None) clear the caller's own rating of an AI message of a
    session they may see."""
    kept_note = _checked_note(rating, note)
    message = await messages.get(caller=caller, message_id=message_id)
    if message.type != MessageType.AI:
        raise Invalid("only AI messages can be rated", field="message_id")
    found: MessageFeedback | None = None
    if rating is None:
        await MessageFeedback.filter(message_id=message.id, user_id=caller.user_id).delete()
    else:
        values = [str(message.id), caller.user_id, rating.value, kept_note, datetime.now(UTC)]
        connection = connections.get("default")
        try:
            rows = await connection.execute_query_dict(_UPSERT.format(*markers(5)), values)
        except IntegrityError:
            # The session (and so the message) was deleted since it was read.
            raise NotFound("message not found") from None
        found = _feedback_from_row(rows[0])
    await logs.record(
        level=LogLevel.INFO,
        event="message.rated",
        message=(
            f"message rated {rating.value} by {caller.name}"
            if rating is not None
            else f"rating of a message cleared by {caller.name}"
        ),
        actor_id=caller.user_id,
        # Whether there is a note, not the note: the log is read by admins, the note is
        # the user's own words.
        details={
            "message_id": str(message.id),
            "session_id": str(message.session_id),
            "rating": rating.value if rating is not None else None,
            "has_note": kept_note is not None,
        },
    )
    return Rated(message=message, feedback=found)


async def for_messages(*, user_id: str, message_ids: Sequence[str]) -> dict[str, MessageFeedback]:
    """`user_id`'s own ratings of those of `message_ids` that are AI messages, by message id."""
    wanted = [m for m in message_ids if is_uuid(m)]
    if not wanted or not is_uuid(user_id):
        return {}
    rows = await MessageFeedback.filter(
        user_id=user_id, message_id__in=wanted, message__type=MessageType.AI
    )
    return {str(row.message_id): row for row in rows}
