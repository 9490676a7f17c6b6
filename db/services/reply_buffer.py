"""The shared buffer of streamed replies: what every process can read of a running reply.

The process generating a reply writes its pieces here a batch at a time (one INSERT per
`FLUSH_EVERY_SECONDS` at most, however many pieces the model sends), so a listener that
lost its connection can pick the reply up through any process. The buffer is bounded by
the replies running right now: a reply's rows go in the very write that stores its
message (`turn_store.store_reply`; the message then answers for it), a failed reply keeps
its error for `FAILED_RETENTION`, and the rows of a process that died stop being renewed
and expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from db.errors import ModelFailed, NotFound, ServiceError
from db.models import Message, MessageType, ReplyChunk, ReplyState, ReplyStream
from db.services.turn_events import ReplyPiece

logger = logging.getLogger(__name__)

# Writing every piece would cost a round trip per token; a tenth of a second is as late
# as a listener coming back through another process may see the newest text.
FLUSH_EVERY_SECONDS = 0.1
POLL_EVERY_SECONDS = 0.1
# How long a reader keeps looking while the database does not answer.
READ_RETRY_SECONDS = 10.0
FAILED_RETENTION = timedelta(minutes=5)


class ReplyWriter:
    """Writes one streamed reply's pieces to the buffer and keeps its lease alive.

    Use it as `async with ReplyWriter(...) as buffer:`; call `stored()` once the reply is
    a message. Leaving the block any other way marks the reply failed, so no writer ever
    outlives its reply and resumers learn why it ended.
    """

    def __init__(self, *, reply_id: str, session_id: str, lease_seconds: float) -> None:
        self.reply_id = reply_id
        self.session_id = session_id
        self._lease = timedelta(seconds=lease_seconds)
        self._pending: list[str] = []
        self._written = 0
        self._stopping = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._done = False

    async def __aenter__(self) -> ReplyWriter:
        await ReplyStream.create(
            id=self.reply_id,
            session_id=self.session_id,
            expires_at=datetime.now(UTC) + self._lease,
        )
        self._flusher = asyncio.create_task(self._flush_regularly())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._done:
            error = exc_info[1]
            reason = str(error) if isinstance(error, ServiceError) else "the reply was stopped"
            # Shielded: a cancelled reply must still say so to those who resume it.
            await asyncio.shield(self._fail(reason))

    def add(self, text: str) -> None:
        self._pending.append(text)

    async def stop(self) -> None:
        """Write no more: the reply is about to be stored, and storing it drops the
        buffer (`turn_store.store_reply`); unwritten pieces are in the message."""
        await self._stop_flushing()

    def stored(self) -> None:
        """The reply is stored as a message (its buffer went with that write)."""
        self._done = True

    async def _fail(self, error: str) -> None:
        self._done = True
        await self._stop_flushing()
        try:
            await self._flush()
            await ReplyStream.filter(id=self.reply_id).update(
                state=ReplyState.FAILED,
                error=error,
                expires_at=datetime.now(UTC) + FAILED_RETENTION,
            )
        except Exception as exc:
            # Its lease is no longer renewed: resumers see it expire instead.
            logger.warning("could not mark the buffered reply %s failed: %s", self.reply_id, exc)

    async def _stop_flushing(self) -> None:
        # Never cancelled mid-write: a chunk half-known to be written would be written twice.
        self._stopping.set()
        if self._flusher is not None:
            await self._flusher
            self._flusher = None

    async def _flush_regularly(self) -> None:
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        renew_every = self._lease.total_seconds() / 3
        while not self._stopping.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY_SECONDS):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self._flush()
                if loop.time() - renewed_at >= renew_every:
                    await ReplyStream.filter(id=self.reply_id).update(
                        expires_at=datetime.now(UTC) + self._lease
                    )
                    renewed_at = loop.time()
            except Exception as exc:
                # The reply goes on; listeners through other processes see it late.
                logger.warning("could not buffer reply %s: %s", self.reply_id, exc)

    async def _flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            await ReplyChunk.create(stream_id=self.reply_id, start=self._written, text=text)
        except BaseException:
            self._pending.insert(0, text)
            raise
        self._written += len(text)


async def session_of(reply_id: str) -> str | None:
    """The session of a reply that is running, failed, or stored; None if unknown."""
    stream = await ReplyStream.get_or_none(id=reply_id).only("id", "session_id")
    if stream is not None:
        return str(stream.session_id)
    message = await Message.get_or_none(id=reply_id, type=MessageType.AI).only("id", "session_id")
    return str(message.session_id) if message is not None else None


async def read(reply_id: str, *, after: int) -> AsyncGenerator[ReplyPiece | Message]:
    """The reply's text from character `after` on, as it is written, then its message.

    Raises `ModelFailed` if the reply failed or its process died (or the database stays
    away longer than `READ_RETRY_SECONDS`), `NotFound` if no such reply exists."""
    loop = asyncio.get_running_loop()
    position = after
    boundary = 0  # where the next unread chunk starts
    followed = False  # whether the reply was still running when we first looked
    failing_since: float | None = None
    while True:
        try:
            stream, chunks, message = await _look(reply_id, boundary)
        except Exception as exc:
            # A blip of the database need not end the listener's stream: look again.
            failing_since = failing_since or loop.time()
            if loop.time() - failing_since > READ_RETRY_SECONDS:
                raise ModelFailed("the reply cannot be read now; try again later") from exc
            await asyncio.sleep(POLL_EVERY_SECONDS)
            continue
        failing_since = None
        for chunk in chunks:
            end = chunk.start + len(chunk.text)
            boundary = end
            if end > position:
                text = chunk.text[max(0, position - chunk.start) :]
                yield ReplyPiece(message_id=reply_id, text=text, offset=end - len(text))
                position = end
        if message is not None:
            # Stored. The last pieces may never have been written to the buffer: one who
            # followed the reply gets them from the message (one who comes after, the
            # message alone).
            if (followed or stream is not None) and len(message.content) > position:
                rest = message.content[position:]
                yield ReplyPiece(message_id=reply_id, text=rest, offset=position)
            yield message
            return
        if stream is None:
            raise NotFound("reply not found")
        followed = True
        if stream.state == ReplyState.FAILED:
            raise ModelFailed(stream.error or "the AI model failed to reply")
        if stream.expires_at < datetime.now(UTC):
            raise ModelFailed(
                "the reply was lost: the server generating it stopped; "
                "send the message again with the same idempotency key"
            )
        await asyncio.sleep(POLL_EVERY_SECONDS)


async def _look(
    reply_id: str, boundary: int
) -> tuple[ReplyStream | None, list[ReplyChunk], Message | None]:
    """Where the reply stands: its buffer row, chunks from `boundary` on, and its message
    once stored (or once its buffer expired: its process died, maybe after storing it)."""
    stream = await ReplyStream.get_or_none(id=reply_id)
    if stream is None:
        # Gone because stored (the same write stores the message and drops the buffer).
        return None, [], await Message.get_or_none(id=reply_id)
    chunks = await ReplyChunk.filter(stream_id=reply_id, start__gte=boundary).order_by("start")
    message = None
    if stream.expires_at < datetime.now(UTC):
        message = await Message.get_or_none(id=reply_id)
    return stream, list(chunks), message


async def sweep() -> int:
    """Delete buffers nobody renews any more; returns how many."""
    return await ReplyStream.filter(expires_at__lt=datetime.now(UTC) - FAILED_RETENTION).delete()
