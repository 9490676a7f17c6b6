"""One grace period from SIGTERM to exit, however it is split.

uvicorn spends SHUTDOWN_GRACE_SECONDS at most waiting for open requests and streams,
then cuts those left mid-body. So, shortly before that deadline, this process stops the
replies still running: each is stored as cancelled and its listeners' streams end with
that message, not with a cut. The app's shutdown then gives turns still running (their
listeners gone) only what is left of the grace, then a few seconds to store what they
said and close connections: set an orchestrator's grace a little longer than
SHUTDOWN_GRACE_SECONDS. WebSockets are closed by uvicorn at once (1012); their replies
run on, for a client to pick up with `replyStream` through another process. uvicorn
handles the signal itself: we note when it came and hand it on.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

_signalled_at: float | None = None


def note_signals(*, grace_seconds: float, before_deadline: Callable[[], object]) -> None:
    """Under uvicorn's signal handlers (and only there), note when SIGTERM/SIGINT comes
    and call `before_deadline` a little before the grace runs out."""
    loop = asyncio.get_running_loop()
    # Long enough to store a stopped reply and send its last events; short enough to
    # leave most of the grace to replies that can still finish.
    margin = min(2.0, grace_seconds / 2)

    def arm() -> None:
        loop.call_later(max(0.0, grace_seconds - margin), before_deadline)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not isinstance(getattr(previous, "__self__", None), uvicorn.Server):
            continue  # not served by uvicorn (tests, another server): nothing to note

        def noting(number: int, frame: FrameType | None, handler: Any = previous) -> None:
            global _signalled_at
            if _signalled_at is None:
                _signalled_at = time.monotonic()
                # A signal handler may interrupt the loop anywhere: only this is safe.
                loop.call_soon_threadsafe(arm)
            handler(number, frame)

        signal.signal(signum, noting)


def remaining(grace_seconds: float) -> float:
    """What is left of the grace period since the signal (all of it if none came)."""
    if _signalled_at is None:
        return grace_seconds
    return max(0.0, grace_seconds - (time.monotonic() - _signalled_at))
