"""A response's head and body leave in one write; streams and flow control as before."""

from __future__ import annotations

import asyncio

from gateway.response_writes import HeadWithBody


class RecordingTransport(asyncio.Transport):
    """A transport that keeps what it is asked to write, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 7


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_a_head_and_body_written_in_one_turn_leave_in_one_write() -> None:
    transport = RecordingTransport()
    writes = HeadWithBody(transport, asyncio.get_running_loop())
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.writes == []  # held for the body
    writes.write(b'{"data":1}')
    assert transport.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"data":1}']
    await next_turn()
    assert transport.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"data":1}']


async def test_a_streamed_head_leaves_at_the_end_of_its_turn_and_chunks_go_straight() -> None:
    transport = RecordingTransport()
    writes = HeadWithBody(transport, asyncio.get_running_loop())
    writes.write(b"head")
    await next_turn()
    assert transport.writes == [b"head"]  # not kept waiting for the first event
    writes.write(b"event 1")
    assert transport.writes == [b"head", b"event 1"]  # written at once, not held
    writes.write(b"event 2")
    await next_turn()
    assert transport.writes == [b"head", b"event 1", b"event 2"]


async def test_close_sends_a_held_head_before_closing() -> None:
    transport = RecordingTransport()
    writes = HeadWithBody(transport, asyncio.get_running_loop())
    writes.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
    writes.close()
    assert transport.writes == [b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"]
    assert transport.closed
    await next_turn()
    assert len(transport.writes) == 1  # the scheduled flush finds nothing left


async def test_a_head_held_for_a_connection_closed_meanwhile_is_dropped() -> None:
    transport = RecordingTransport()
    writes = HeadWithBody(transport, asyncio.get_running_loop())
    writes.write(b"head")
    transport.close()  # the client went away
    await next_turn()
    assert transport.writes == []


async def test_everything_else_is_the_transports() -> None:
    transport = RecordingTransport()
    writes = HeadWithBody(transport, asyncio.get_running_loop())
    assert writes.get_write_buffer_size() == 7
    assert writes.is_closing() is False
