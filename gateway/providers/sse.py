"""An incremental parser for server-sent events (the WHATWG `text/event-stream` format).

Pure and transport-free: feed it bytes exactly as they arrive, split anywhere (inside a
UTF-8 character, inside a field name, between `\\r` and `\\n`), and it returns the events
completed so far.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Any of the three line endings the format allows; `\r\n` first so it counts as one.
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEError(Exception):
    """The stream cannot be parsed within the parser's memory bound."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Turns a byte stream into `SSEEvent`s; `feed()` each chunk, then `finish()` once."""

    def __init__(self, *, max_pending_chars: int = 4 * 1024 * 1024) -> None:
        # errors="replace": one bad byte from a server must not lose the rest of the reply.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_pending = max_pending_chars
        self._partial: list[str] = []  # the current line, not yet terminated
        self._partial_chars = 0
        self._skip_lf = False  # the last chunk ended in "\r": a leading "\n" belongs to it
        self._at_start = True
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self._last_id: str | None = None
        self.comments = 0  # comment lines seen (servers send ": keep-alive" to hold the line)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that `chunk` completes, in order."""
        return self._take(self._decoder.decode(chunk))

    def finish(self) -> list[SSEEvent]:
        """The stream ended: decode what is left; an event missing its blank line is dropped.

        Dropping it is what the format prescribes; `pending` tells whether that happened.
        """
        return self._take(self._decoder.decode(b"", final=True))

    @property
    def pending(self) -> bool:
        """Whether an unfinished line or an undispatched event is buffered."""
        return bool(self._partial or self._data)

    def _take(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            text = text.removeprefix(_BOM)
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        events: list[SSEEvent] = []
        position = 0
        while position < len(text):
            end = _LINE_END.search(text, position)
            if end is None:
                self._keep_partial(text[position:])
                break
            line = "".join([*self._partial, text[position : end.start()]])
            self._partial.clear()
            self._partial_chars = 0
            if end.group() == "\r" and end.end() == len(text):
                self._skip_lf = True
            position = end.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _keep_partial(self, piece: str) -> None:
        self._partial.append(piece)
        self._partial_chars += len(piece)
        if self._partial_chars + self._data_chars > self._max_pending:
            raise SSEError(f"an event is longer than {self._max_pending} characters")

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > self._max_pending:
                raise SSEError(f"an event is longer than {self._max_pending} characters")
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored: we never reconnect to resume a reply.
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._data_chars, self._event = [], 0, ""
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event or "message", id=self._last_id)
