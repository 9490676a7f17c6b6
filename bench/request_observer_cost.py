"""What the request observer (request id, access counts, metrics) adds to one request.

Drives the ASGI middleware around a do-nothing app in one process, without a network or a
database, so the difference is the middleware alone:

    .venv/bin/python bench/request_observer_cost.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateway.observe import Observations, RequestObserver

ROUTE = Route("/api/v1/sessions/{session_id}/messages", lambda request: None)
START: Message = {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]}
BODY: Message = {"type": "http.response.body", "body": b"{}"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = ROUTE  # as the router leaves it
    await send(START)
    await send(BODY)


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    return None


def scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/sessions/x/messages",
        "headers": [(b"host", b"t"), (b"authorization", b"Bearer x"), (b"accept", b"*/*")],
    }


async def per_request_us(handler: object, requests: int) -> float:
    call = handler.__call__  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(requests):
        await call(scope(), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    options = parser.parse_args()
    variants = {
        "no middleware": app,
        "request id only (METRICS_ENABLED=false)": RequestObserver(
            app, observations=Observations(access_log=False, metrics=False)
        ),
        "request id + metrics (default)": RequestObserver(
            app, observations=Observations(access_log=False, metrics=True)
        ),
    }
    for name, handler in variants.items():
        await per_request_us(handler, options.requests // 10)  # warm up
        best = min([await per_request_us(handler, options.requests) for _ in range(3)])
        print(f"{name:42} {best:7.2f} µs/request")


if __name__ == "__main__":
    asyncio.run(main())
