"""GET /readyz: the process can serve (database reachable, migrations current).

Beside GET /healthz (gateway.app: the process answers).

Neither authenticates, so neither is rate limited; the request observer leaves both out
of access lines and request counts. /readyz pings the database within a short timeout,
at most once a second (an answer is reused for a second, and one check runs at a time:
a flood of probes costs the pool one connection, not one each), and compares migrations
only until they are found current (they stay so while this release runs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise import connections

from db import migrate

logger = logging.getLogger(__name__)

PING_TIMEOUT = 2.0
# How long one check's answer is given again.
ANSWER_SECONDS = 1.0


class Readiness:
    """The /readyz endpoint; remembers that migrations were found current."""

    def __init__(
        self,
        *,
        timeout: float = PING_TIMEOUT,
        reuse_seconds: float = ANSWER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.reuse_seconds = reuse_seconds
        self.clock = clock
        self.migrations_current = False
        self.checks = 0  # checks made (tests read it)
        self._checking = asyncio.Lock()
        self._answer: tuple[float, str | None] | None = None  # (when, reason)

    async def endpoint(self, request: Request) -> JSONResponse:
        """200 `{status: ready}`, else 503 with the reason."""
        reason = await self._recent_problem()
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)

    async def _recent_problem(self) -> str | None:
        async with self._checking:
            if self._answer is not None and self.clock() - self._answer[0] < self.reuse_seconds:
                return self._answer[1]
            self.checks += 1
            reason = await self._problem()
            self._answer = (self.clock(), reason)
            return reason

    async def _problem(self) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                connection = connections.get("default")
                await connection.execute_query("SELECT 1")
        except TimeoutError:
            return f"database did not answer within {self.timeout:g} s"
        except Exception as exc:
            logger.warning("readiness: database unreachable: %s", type(exc).__name__)
            return f"database unreachable ({type(exc).__name__})"
        if self.migrations_current:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                pending = await migrate.unapplied()
        except TimeoutError:
            return f"database did not answer within {self.timeout:g} s"
        except Exception as exc:
            # A database never migrated has no `aerich` table to read.
            return f"migrations not applied (cannot read applied migrations: {type(exc).__name__})"
        if pending:
            return f"migrations pending: {', '.join(pending)}"
        self.migrations_current = True
        return None
