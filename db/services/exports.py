"""Exports: a whole session as one document (JSON or Markdown), written as it is read.

The history is read in pages of PAGE_SIZE messages by sequence range (an index range
scan, as cheap at message 100,000 as at message 1), and each page is encoded and handed
on before the next is read: an export holds one page and one chunk in memory whatever
the session's length, and a slow reader holds the reading back (the transport waits).

The end is fixed when the export starts: the messages numbered 1..last_seq as read then.
A message stored meanwhile is not in it (the document's `message_count` says how many
are), and a reply regenerated meanwhile may appear in either version (each position
appears once). Only the history is exported, as REST's history shows it: each turn's
current reply, never the replies it replaced (variants).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

import orjson
from tortoise import connections

from db import request_context
from db.errors import Invalid
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message, MessageType
from db.services import logs, sessions
from db.sql import markers
from db.times import iso

logger = logging.getLogger(__name__)

# Messages read per statement, and the size at which encoded text is handed on.
PAGE_SIZE = 500
CHUNK_BYTES = 64 * 1024


class Format(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"


_EXTENSIONS = {Format.JSON: "json", Format.MARKDOWN: "md"}
_LABELS = {MessageType.USER: "User", MessageType.AI: "Assistant"}


class ExportInterrupted(Exception):
    """The export could not be finished once its first bytes were out (the database
    failed, or the session was deleted meanwhile): what was sent is not the whole
    document, and the transport must say so (a door must not end it as if complete)."""


@dataclass(frozen=True, slots=True)
class Export:
    session_id: str
    format: Format
    filename: str  # a safe file name: lowercase ASCII letters, digits and dashes
    message_count: int
    # The document, in chunks; nothing is read until it is iterated.
    chunks: AsyncGenerator[bytes]


# The messages numbered `low`..`high` of a session: a range of its (session_id, seq) index.
_PAGE = """
SELECT m.* FROM messages AS m
WHERE m.session_id = {0} AND m.seq >= {1} AND m.seq <= {2}
ORDER BY m.seq
"""


def parse_format(value: str | None) -> Format:
    """The export format a client named (JSON when it named none)."""
    if value is None:
        return Format.JSON
    try:
        return Format(value)
    except ValueError:
        names = " or ".join(repr(kind.value) for kind in Format)
        raise Invalid(f"must be {names}", field="format") from None


async def get(*, caller: Caller, session_id: str, format: str | None = None) -> Export:
    """The session as a download in `format`; checks (format, ownership) are made here,
    before any of the document is produced."""
    kind = parse_format(format)
    session = await sessions.get(caller=caller, session_id=session_id)
    count = sessions.message_count(session)  # the end of the export, read once
    await logs.record(
        level=LogLevel.INFO,
        event="session.exported",
        message=f"session exported by {caller.name} as {kind.value}",
        actor_id=caller.user_id,
        details={"session_id": str(session.id), "format": kind.value, "message_count": count},
    )
    writer = _json if kind is Format.JSON else _markdown
    return Export(
        session_id=str(session.id),
        format=kind,
        filename=filename(session, kind),
        message_count=count,
        chunks=_chunked(writer(session, count, _pages(str(session.id), count))),
    )


def filename(session: ChatSession, kind: Format) -> str:
    """`<title as ASCII words>-<first 8 of the id>.<ext>`: nothing a file system, a shell
    or a Content-Disposition header could misread."""
    ascii_title = unicodedata.normalize("NFKD", session.title or "").encode("ascii", "ignore")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.decode().lower()).strip("-")[:40].strip("-")
    return f"{slug or 'chat-session'}-{str(session.id)[:8]}.{_EXTENSIONS[kind]}"


async def _pages(session_id: str, last_seq: int) -> AsyncGenerator[list[Message]]:
    """The history 1..last_seq, a page at a time, each position exactly once."""
    connection = connections.get("default")
    statement = _PAGE.format(*markers(3))
    low = 1
    while low <= last_seq:
        high = min(low + PAGE_SIZE - 1, last_seq)
        try:
            rows = await connection.execute_query_dict(statement, [session_id, low, high])
        except Exception as exc:
            _interrupted(session_id, low - 1, last_seq, repr(exc), exc)
        # Positions 1..last_seq are never empty while the session exists (a regenerate
        # swaps a reply in the same transaction): a short page means it was deleted.
        if len(rows) != high - low + 1:
            _interrupted(session_id, low - 1, last_seq, "the session was deleted", None)
        yield [Message.from_row(row) for row in rows]
        low = high + 1


def _interrupted(
    session_id: str, done: int, last_seq: int, why: str, exc: Exception | None
) -> NoReturn:
    reference = request_context.current() or "-"
    # A database failure is ours to look into; a session deleted meanwhile is not.
    logger.log(
        logging.ERROR if exc is not None else logging.WARNING,
        "export of session %s stopped after %d of %d messages (reference %s): %s",
        *(session_id, done, last_seq, reference, why),
        exc_info=exc,
    )
    if exc is not None:
        logs.record_internal_error(
            reference=reference,
            where=f"exporting session {session_id}",
            exception=type(exc).__name__,
        )
    raise ExportInterrupted(f"export of session {session_id} stopped after {done} messages")


async def _chunked(pieces: AsyncGenerator[bytes]) -> AsyncGenerator[bytes]:
    """`pieces` gathered into chunks of about CHUNK_BYTES (the first at once, so a client
    sees the download begin before the first page is read)."""
    pending: list[bytes] = []
    size = 0
    first = True
    try:
        async for piece in pieces:
            pending.append(piece)
            size += len(piece)
            if first or size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending.clear()
                size = 0
                first = False
        if pending:
            yield b"".join(pending)
    finally:
        await pieces.aclose()


# JSON ------------------------------------------------------------------------------------


def session_out(session: ChatSession, message_count: int) -> dict[str, Any]:
    """The session as the export's JSON shows it (names as REST's: ids `<kind>_id`,
    `..._at` times as `..._time`)."""
    return {
        "session_id": str(session.id),
        "user_id": str(session.user_id),
        "model_config_id": str(session.model_config_id),
        "title": session.title,
        "archived": session.archived,
        "forked_from_message_id": (
            None if session.forked_from_id is None else str(session.forked_from_id)
        ),
        "created_time": iso(session.created_at),
        "updated_time": iso(session.updated_at),
        "message_count": message_count,
    }


def message_out(message: Message) -> dict[str, Any]:
    """A message exactly as REST's history shows it (gateway.rest.shapes.message_out)."""
    return {
        "message_id": str(message.id),
        "type": message.type.value,
        "content": message.content,
        "created_time": iso(message.created_at),
        "metadata": message.metadata,
    }


async def _json(
    session: ChatSession, count: int, pages: AsyncGenerator[list[Message]]
) -> AsyncGenerator[bytes]:
    """`{"session": {...}, "messages": [...]}`, one message a line; valid JSON as a whole
    only once the last byte is out."""
    yield b'{"session":' + orjson.dumps(session_out(session, count)) + b',\n"messages":['
    separator = b"\n"
    async with aclosing(pages):
        async for page in pages:
            for message in page:
                yield separator + orjson.dumps(message_out(message))
                separator = b",\n"
    yield b"\n]}\n"


# Markdown --------------------------------------------------------------------------------

_BACKTICKS = re.compile("`+")
# ASCII punctuation: every character CommonMark lets a backslash escape.
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def inline_text(text: str) -> str:
    """`text` as literal inline Markdown on one line: whitespace runs (newlines included)
    become one space and every ASCII punctuation character is backslash-escaped, so no
    emphasis, link, HTML, entity or heading marker can form."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.split()))


def fenced(content: str) -> str:
    """`content` as a fenced code block that gives it back exactly.

    Nothing inside a fenced block is Markdown, and only a line holding a run of at
    least as many backticks as the opening fence (after at most three spaces, before
    only spaces and tabs) closes it: a fence longer than the longest run of backticks
    in the content cannot be closed early. The block's
    text is every line between the fences with a line ending each, so the content is
    the block's text without its last newline. Markdown reads a carriage return as a
    line break (CommonMark 2.1): text holding one is written as a JSON string instead
    (info string `json`), which keeps it exactly too. (The other character a parser
    replaces, NUL, is never stored: db.services.text.)
    """
    info = ""
    if "\r" in content:
        content, info = orjson.dumps(content).decode(), "json"
    longest = (
        max((len(run) for run in _BACKTICKS.findall(content)), default=0) if "`" in content else 0
    )
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{content}\n{fence}\n"


def _markdown_head(session: ChatSession, count: int) -> str:
    title = inline_text(session.title) if session.title and session.title.strip() else ""
    lines = [
        f"# {title or 'Chat session'}",
        "",
        f"- Session: `{session.id}`",
        f"- Model config: `{session.model_config_id}`",
        f"- Created: {iso(session.created_at)}",
        f"- Updated: {iso(session.updated_at)}",
        f"- Messages: {count}",
    ]
    if session.forked_from_id is not None:
        lines.append(f"- Forked from message: `{session.forked_from_id}`")
    return "\n".join(lines) + "\n"


def markdown_message(message: Message) -> str:
    """One message as a section: a heading naming who spoke and when, then its text."""
    label = _LABELS[message.type]
    return f"\n## **{label}** · {iso(message.created_at)}\n\n{fenced(message.content)}"


async def _markdown(
    session: ChatSession, count: int, pages: AsyncGenerator[list[Message]]
) -> AsyncGenerator[bytes]:
    yield _markdown_head(session, count).encode()
    async with aclosing(pages):
        async for page in pages:
            for message in page:
                yield markdown_message(message).encode()
    # The last line: a reader can tell a whole export from one cut short.
    yield f"\n---\n\n*End of the session: {count} messages.*\n".encode()
