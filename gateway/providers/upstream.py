"""The HTTP side of a network model client: one aiohttp session, deadlines, error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

import aiohttp

from gateway.providers.failures import Failure, Redactor, http_failure
from gateway.providers.retry import (
    RETRYABLE_STATUSES,
    Attempts,
    ProviderTimeouts,
    retry_after_seconds,
)
from gateway.providers.sse import SSEError, SSEEvent, SSEParser

_ERROR_BODY_BYTES = 16 * 1024  # enough for any error message; a proxy's HTML page is cut
_DRAIN_SECONDS = 0.25


class Upstream:
    """POSTs JSON to one URL over its own connection pool; every failure is a `Failure`."""

    def __init__(
        self, url: str, headers: Mapping[str, str], timeouts: ProviderTimeouts, redact: Redactor
    ) -> None:
        self._url = url
        self._headers = dict(headers)
        self._timeouts = timeouts
        self._redact = redact
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    @asynccontextmanager
    async def post(
        self, body: bytes, attempts: Attempts, *, accept: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A 2xx response; any other status raises a `Failure` with the server's message."""
        headers = {**self._headers, "Accept": accept}
        async with self.guard(attempts):
            # No redirects: a POST would turn into a GET, and the key must not follow one.
            response = await self._http().post(
                self._url, data=body, headers=headers, allow_redirects=False
            )
        try:
            if not 200 <= response.status < 300:
                async with self.guard(attempts):
                    error_body = await _read_at_most(response.content, _ERROR_BODY_BYTES)
                retry_after = retry_after_seconds(
                    response.headers.get("Retry-After"), response.headers.get("retry-after-ms")
                )
                raise http_failure(
                    response.status,
                    error_body,
                    self._redact,
                    retryable=response.status in RETRYABLE_STATUSES,
                    retry_after=retry_after,
                )
            yield response
        finally:
            response.release()  # back to the pool when read to the end, else closed

    async def read(self, response: aiohttp.ClientResponse, attempts: Attempts) -> bytes:
        async with self.guard(attempts):
            return await response.read()

    async def events(
        self, response: aiohttp.ClientResponse, attempts: Attempts
    ) -> AsyncGenerator[SSEEvent, None]:
        """The server-sent events of `response`, as the bytes arrive."""
        parser = SSEParser()
        while True:
            # Guard only the wait, never a yield: the caller's own work is not ours to time.
            async with self.guard(attempts):
                chunk = await response.content.readany()
            try:
                events = parser.feed(chunk) if chunk else parser.finish()
            except SSEError as exc:
                raise Failure(str(exc), reason="malformed_response") from exc
            for event in events:
                yield event
            if not chunk:
                return

    async def drain(self, response: aiohttp.ClientResponse) -> None:
        """Read what follows [DONE] (normally just the end of the body) so the connection
        can return to the pool. A server that keeps the body open after [DONE] costs at
        most `_DRAIN_SECONDS` and its connection, never the reply."""
        with suppress(TimeoutError, aiohttp.ClientError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                while await response.content.readany():
                    pass

    @asynccontextmanager
    async def guard(self, attempts: Attempts) -> AsyncIterator[None]:
        """Bound one network wait by the reply's deadline; map transport errors to Failures."""
        timeouts = self._timeouts
        try:
            async with asyncio.timeout_at(attempts.deadline):
                yield
        except aiohttp.ConnectionTimeoutError as exc:
            message = f"could not connect to the model server within {timeouts.connect:g} s"
            raise Failure(message, reason="connect_timeout", retryable=True) from exc
        except aiohttp.ServerTimeoutError as exc:
            message = f"the model server sent nothing for {timeouts.read:g} s"
            raise Failure(message, reason="read_timeout", retryable=True) from exc
        except TimeoutError as exc:  # our own deadline: aiohttp's timeouts are caught above
            message = f"the model took longer than the {timeouts.total:g} s limit"
            raise Failure(message, reason="total_timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            raise _connection_failure("could not connect to the model server", exc) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _connection_failure("the connection to the model server broke", exc) from exc
        except aiohttp.ClientError as exc:
            raise Failure(
                "the model server's answer could not be read",
                reason="protocol",
                details={"exception": type(exc).__name__},
            ) from exc

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; closed by aclose().
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=None,  # the deadline spans retries too, so `guard` enforces it per wait
                connect=self._timeouts.connect,
                sock_connect=self._timeouts.connect,
                sock_read=self._timeouts.read,
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(), timeout=timeout, raise_for_status=False
            )
        return self._session


def _connection_failure(message: str, exc: Exception) -> Failure:
    # The exception's own text names hosts and sockets: the class is enough for the log.
    return Failure(
        message, reason="connection", retryable=True, details={"exception": type(exc).__name__}
    )


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    data = bytearray()
    while len(data) < limit:
        chunk = await content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)
