"""The stack's floor for a compiled read: uvicorn and asyncpg's pool answering each request
with its statement, and doing nothing else.

bench/graphql_reads.py runs this beside the gateway as a third server, "floor", on the
same CPU, with the very requests the gateway gets. It is given, for each request (its
Authorization header and body), the statement and parameters the gateway's compiled path
binds for it; it looks the request up, runs that statement on a pooled connection and
sends the statement's text as the body. So PostgreSQL does the same work for both, the
HTTP traffic is the same bytes, and what the gateway spends per request beyond this
server is its own code: authentication, parsing and planning, binding, its middleware
(request ids, metrics, security headers, body limits) and Starlette. No server on this
stack answering these requests from the database can spend less than the floor; its req/s
against PostGraphile's is the highest ratio this stack can reach on the machine.

It uses what the gateway uses: uvicorn with httptools and uvloop (no access log),
asyncpg's pool configured as db/config.py configures it (no reset when a connection is
given back, idle connections kept, the same statement timeout), and prepared statements.

    .venv/bin/python bench/stack_floor.py --statements FILE --dsn postgresql://... \\
        --port 8000 [--pool 10]

FILE is a pickle written by graphql_reads.py: {(authorization, body): (sql, params)}.
A request not in it is answered 404.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn

Statements = dict[tuple[str, str], tuple[str, list[object]]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# As the gateway's DATABASE_TIMEOUT default (gateway/settings.py): asyncpg's command_timeout
# arms a timer for every statement, part of what each statement costs.
STATEMENT_TIMEOUT = 10.0
JSON = [(b"content-type", b"application/json")]


async def keep_session(connection: object) -> None:
    """Nothing run on a connection given back (db/config.py: the gateway's `reset`)."""


class Floor:
    """The ASGI app: one statement per known request, its text as the body."""

    def __init__(self, statements: Statements, dsn: str, pool_size: int) -> None:
        self.statements = statements
        self.dsn = dsn
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def running(self) -> Any:
        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.pool_size,
            max_size=self.pool_size,
            reset=keep_session,
            max_inactive_connection_lifetime=0,
            command_timeout=STATEMENT_TIMEOUT,
            timeout=STATEMENT_TIMEOUT,
        )
        try:
            yield
        finally:
            await self.pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        authorization = next(
            (value.decode() for name, value in scope["headers"] if name == b"authorization"), ""
        )
        found = self.statements.get((authorization, body.decode()))
        if found is None or self.pool is None:
            unknown = b'{"errors":[{"message":"not a request of this run"}]}'
            headers = [*JSON, (b"content-length", str(len(unknown)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": unknown})
            return
        sql, params = found
        async with self.pool.acquire() as connection:
            text: str = await connection.fetchval(sql, *params)
        answer = text.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*JSON, (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with self.running():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--statements", type=Path, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=int, default=10)
    options = parser.parse_args()
    statements: Statements = pickle.loads(options.statements.read_bytes())
    uvicorn.run(
        Floor(statements, options.dsn, options.pool),
        host="127.0.0.1",
        port=options.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
