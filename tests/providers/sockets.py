"""Addresses that fail to connect: one hangs (for connect timeouts), one refuses."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def unanswered_port() -> AsyncIterator[str]:
    """A base URL whose TCP connects hang: a listener that never accepts, its one-slot
    backlog already taken, so the kernel drops further SYNs and a connect times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        filler.close()
        listener.close()


def closed_port() -> str:
    """A base URL whose connects are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
