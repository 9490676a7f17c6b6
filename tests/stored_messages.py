"""Messages written straight into a session, as a turn writes them, for tests that need
exact contents (search, ranking) without a model in between."""

from __future__ import annotations

from db.models import ChatSession, Message, MessageType


async def stored(
    session_id: str,
    *contents: str,
    kind: MessageType = MessageType.USER,
    replaced: bool = False,
) -> list[str]:
    """Store messages at the end of the session's history (`replaced`: as replaced
    replies, with no place in it); their ids."""
    session = await ChatSession.get(id=session_id)
    ids = []
    for content in contents:
        seq = None
        if not replaced:
            session.last_seq += 1
            seq = session.last_seq
        message = await Message.create(session_id=session_id, seq=seq, type=kind, content=content)
        ids.append(str(message.id))
    await session.save(update_fields=["last_seq"])
    return ids
