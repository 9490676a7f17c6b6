"""uvicorn's httptools protocol with a bound on the size of a request's head, writing a
plain response's head and body at once (gateway.response_writes).

httptools keeps a request line and headers in memory for as long as they keep coming:
left alone, one client can send megabytes of headers and the app would see them all. The
head is counted here as it arrives (the bytes of every chunk that ends while the head is
still incomplete) and, past MAX_HEADER_BYTES, answered 431 and the connection closed, so
a head costs at most the limit plus one read of the socket.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.response_writes import HeadWithBody
from gateway.settings import get_settings

STATUS_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


class _HeadTooLarge(Exception):
    pass


class BoundedHeadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing request heads over `max_header_bytes`; each request's
    response head leaves with its body when both are written in one turn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read in each worker process from its environment: uvicorn builds this class
        # by name there, so it takes no arguments of its own.
        self.max_head_bytes = get_settings().max_header_bytes
        self.head_bytes = 0  # of the head's parts parsed so far
        self.unparsed_bytes = 0  # of the chunks received while the head was incomplete
        self.in_head = True  # a connection starts with a request's head
        self.head_too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.unparsed_bytes = 0
        before = self.cycle
        super().on_headers_complete()
        # The request's new cycle (none for an upgrade), its task not yet run, writes
        # through this.
        if self.cycle is not None and self.cycle is not before:
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # One header still arriving is buffered by httptools without a callback: bound it
        # by what came while the head was incomplete.
        if self.in_head and not self.head_too_large and not self.transport.is_closing():
            self.unparsed_bytes += len(data)
            if self.unparsed_bytes > self.max_head_bytes:
                self.head_too_large = True
                self.refuse_head()

    def send_400_response(self, msg: str) -> None:
        # The parser stops on a callback's exception and uvicorn answers 400: ours is 431.
        if self.head_too_large:
            self.refuse_head()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_head_bytes:
            self.head_too_large = True
            raise _HeadTooLarge

    def refuse_head(self) -> None:
        if self.transport.is_closing():
            return
        body = orjson.dumps(
            {
                "code": 431,
                "message": f"request line and headers exceed {self.max_head_bytes} bytes",
                "data": None,
            }
        )
        head = [STATUS_431]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            # Its headers were never read whole: always a fresh request id.
            b"x-request-id: " + uuid.uuid4().hex.encode() + b"\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
