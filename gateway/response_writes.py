"""A response's head and body in one socket write where uvicorn makes two.

uvicorn writes a response's status line and headers as soon as the app starts the
response, and its body as a second write: two `send` system calls per answer, each of
which, on a local connection, also runs the receiving side's network stack and wakes the
client. Here a request's first write (the head) is held until the end of the event
loop's turn: the body of a plain response, written in the same turn, leaves with it in
one write. Nothing else changes: a streamed response's head still leaves in the turn it
was written, and every later write goes straight to the transport, so its flow control
(pausing a writer whose client reads slowly) sees each chunk as before.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeadWithBody:
    """Stands in for a connection's transport in one request's cycle: its first write is
    sent with the next one made in the same turn; anything else goes to the transport."""

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.writelines((held, data))  # one writev on uvloop, no copy
        elif not self._started:
            self._started = True
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held (nothing to a connection already closing)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        # A response without a body (Connection: close) still goes out before the FIN.
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
