"""The SSE parser on its own: every way bytes can be split must give the same events."""

from __future__ import annotations

import pytest

from gateway.providers.sse import SSEError, SSEEvent, SSEParser

# Every feature at once: a BOM, all three line endings, multibyte characters of 2, 3 and 4
# bytes, a comment, a multi-line data field, named events, an id, and a blank-only event.
SAMPLE = (
    "\ufeff: keep-alive\r\n"
    "data: caf\u00e9 \u4e2d\u6587 \U0001f600\r\n\r\n"
    "event: update\rdata: first line\rdata:second line\r\r"
    "id: 7\ndata\n\n"
    ": another comment\n\n"
    "data:  two leading spaces\n\n"
).encode()
EXPECTED = [
    SSEEvent(data="caf\u00e9 \u4e2d\u6587 \U0001f600"),
    SSEEvent(data="first line\nsecond line", event="update"),
    SSEEvent(data="", id="7"),
    SSEEvent(data=" two leading spaces", id="7"),
]


def parse(*chunks: bytes) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events = [event for piece in chunks for event in parser.feed(piece)]
    return [*events, *parser.finish()], parser


def test_whole_stream() -> None:
    events, parser = parse(SAMPLE)
    assert events == EXPECTED
    assert parser.comments == 2
    assert not parser.pending


def test_one_byte_at_a_time() -> None:
    events, _ = parse(*(SAMPLE[i : i + 1] for i in range(len(SAMPLE))))
    assert events == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(SAMPLE)))
def test_every_two_way_split(cut: int) -> None:
    # Covers cuts inside each multibyte character, inside "data:", and between \r and \n.
    events, _ = parse(SAMPLE[:cut], SAMPLE[cut:])
    assert events == EXPECTED


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # Were the "\n" taken as a line of its own, "a" would be dispatched alone.
    events, _ = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert events == [SSEEvent(data="a\nb")]


def test_events_arrive_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == [SSEEvent(data="one")]
    assert parser.feed(b"o\n\n") == [SSEEvent(data="two")]


def test_comments_and_unknown_fields_are_not_events() -> None:
    events, parser = parse(b": ping\n\n: ping\n\nretry: 100\nfoo: bar\n\n")
    assert events == []
    assert parser.comments == 2


def test_event_type_resets_after_each_event() -> None:
    events, _ = parse(b"event: error\ndata: x\n\ndata: y\n\n")
    assert [event.event for event in events] == ["error", "message"]


def test_an_event_without_its_blank_line_is_dropped_at_the_end() -> None:
    events, parser = parse(b"data: complete\n\ndata: cut")
    assert events == [SSEEvent(data="complete")]
    assert parser.pending

    events, parser = parse(b"data: complete\n\ndata: no blank line\n")
    assert events == [SSEEvent(data="complete")]
    assert parser.pending


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events, _ = parse(b"data: a\xffb\n\n")
    assert events == [SSEEvent(data="a\ufffdb")]


def test_a_character_cut_by_the_end_of_the_stream_is_replaced() -> None:
    events, parser = parse(b"data: \xe4\xb8\n\n", b"data: \xe4\xb8")
    assert events == [SSEEvent(data="\ufffd")]
    assert parser.pending


def test_an_endless_line_is_refused() -> None:
    parser = SSEParser(max_pending_chars=100)
    with pytest.raises(SSEError):
        for _ in range(20):
            parser.feed(b"data: " + b"x" * 10)


def test_an_endless_event_is_refused() -> None:
    parser = SSEParser(max_pending_chars=100)
    with pytest.raises(SSEError):
        parser.feed(b"data: 0123456789\n" * 20)
