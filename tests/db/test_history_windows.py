"""history_windows.seq_range: which sequence numbers a Relay window of a session covers.

A pure function of the session's last sequence number and the request: no database."""

from __future__ import annotations

import pytest

from db.services.history_windows import SeqRange, seq_range
from db.services.pagination import Slice

LAST = 10


def forward(size: int) -> Slice:
    return Slice(size=size)


def backward(size: int) -> Slice:
    return Slice(size=size, backward=True)


def covered(window: SeqRange) -> list[int]:
    return list(range(window.low, window.high + 1))


@pytest.mark.parametrize(
    ("page", "after", "before", "seqs", "has_next", "has_previous"),
    [
        # Forward: from the start, or from just after `after`.
        (forward(3), None, None, [1, 2, 3], True, False),
        (forward(3), 3, None, [4, 5, 6], True, True),
        (forward(3), 8, None, [9, 10], False, True),
        (forward(LAST), None, None, list(range(1, LAST + 1)), False, False),
        (forward(LAST + 5), None, None, list(range(1, LAST + 1)), False, False),
        (forward(3), 0, None, [1, 2, 3], True, False),
        # Backward: from the end, or from just before `before`.
        (backward(3), None, None, [8, 9, 10], False, True),
        (backward(3), None, 8, [5, 6, 7], True, True),
        (backward(3), None, 3, [1, 2], True, False),
        (backward(LAST + 5), None, None, list(range(1, LAST + 1)), False, False),
        # A `before` past the end is the end.
        (backward(3), None, LAST + 50, [8, 9, 10], False, True),
        (forward(LAST), None, LAST + 50, list(range(1, LAST + 1)), False, False),
    ],
    ids=[
        "first-page",
        "forward-after",
        "forward-last-page",
        "forward-exactly-all",
        "forward-more-than-all",
        "after-zero-is-the-start",
        "last-page",
        "backward-before",
        "backward-first-page",
        "backward-more-than-all",
        "backward-before-past-the-end",
        "forward-before-past-the-end",
    ],
)
def test_windows_and_their_edges(
    page: Slice,
    after: int | None,
    before: int | None,
    seqs: list[int],
    has_next: bool,
    has_previous: bool,
) -> None:
    window = seq_range(last_seq=LAST, page=page, after=after, before=before)

    assert covered(window) == seqs
    assert (window.has_next, window.has_previous) == (has_next, has_previous)


@pytest.mark.parametrize("page", [forward(20), backward(20)], ids=["forward", "backward"])
def test_an_empty_session_has_an_empty_window_with_nothing_either_side(page: Slice) -> None:
    window = seq_range(last_seq=0, page=page)

    assert covered(window) == []
    assert (window.has_next, window.has_previous) == (False, False)


def test_after_and_before_bound_a_forward_window() -> None:
    window = seq_range(last_seq=LAST, page=forward(LAST), after=2, before=6)

    assert covered(window) == [3, 4, 5]
    # Nothing more before `before`; messages 1 and 2 lie before the window.
    assert (window.has_next, window.has_previous) == (False, True)


def test_after_and_before_bound_a_backward_window() -> None:
    tail = seq_range(last_seq=LAST, page=backward(2), after=2, before=6)
    whole = seq_range(last_seq=LAST, page=backward(LAST), after=2, before=6)

    assert covered(tail) == [4, 5]
    assert (tail.has_next, tail.has_previous) == (True, True)
    assert covered(whole) == [3, 4, 5]
    # Nothing more after `after`; messages 6 to 10 lie after the window.
    assert (whole.has_next, whole.has_previous) == (True, False)


@pytest.mark.parametrize(
    ("page", "after", "before", "has_next", "has_previous"),
    [
        (forward(3), LAST, None, False, True),
        (forward(3), LAST + 5, None, False, True),
        (backward(3), None, 1, True, False),
        (forward(3), 5, 6, False, True),
        (backward(3), 5, 6, True, False),
    ],
    ids=[
        "after-the-last",
        "after-past-the-end",
        "before-the-first",
        "nothing-between-after-and-before-forward",
        "nothing-between-after-and-before-backward",
    ],
)
def test_a_window_beyond_the_edges_is_empty(
    page: Slice, after: int | None, before: int | None, has_next: bool, has_previous: bool
) -> None:
    window = seq_range(last_seq=LAST, page=page, after=after, before=before)

    assert covered(window) == []
    assert (window.has_next, window.has_previous) == (has_next, has_previous)


def test_size_zero_is_empty_and_tells_where_messages_lie() -> None:
    first_none = seq_range(last_seq=LAST, page=forward(0))
    last_none = seq_range(last_seq=LAST, page=backward(0))

    assert covered(first_none) == covered(last_none) == []
    assert (first_none.has_next, first_none.has_previous) == (True, False)
    assert (last_none.has_next, last_none.has_previous) == (False, True)


@pytest.mark.parametrize("last_seq", [1, 7, LAST])
@pytest.mark.parametrize("size", [1, 3, LAST])
def test_paging_forward_visits_every_message_once(last_seq: int, size: int) -> None:
    seen: list[int] = []
    after: int | None = None
    while True:
        window = seq_range(last_seq=last_seq, page=forward(size), after=after)
        assert window.has_previous == (after is not None)
        seen += covered(window)
        if not window.has_next:
            break
        after = window.high

    assert seen == list(range(1, last_seq + 1))


@pytest.mark.parametrize("last_seq", [1, 7, LAST])
@pytest.mark.parametrize("size", [1, 3, LAST])
def test_paging_backward_visits_every_message_once(last_seq: int, size: int) -> None:
    seen: list[int] = []
    before: int | None = None
    while True:
        window = seq_range(last_seq=last_seq, page=backward(size), before=before)
        assert window.has_next == (before is not None)
        seen = covered(window) + seen
        if not window.has_previous:
            break
        before = window.low

    assert seen == list(range(1, last_seq + 1))
