"""A PostgreSQL wire-protocol proxy that counts the round trips a client makes.

    proxy = PgWireProxy("127.0.0.1", 5432)
    port = await proxy.start()          # or proxy.start_in_thread(); then point the
                                        # client at 127.0.0.1:<port>
    before = proxy.snapshot()
    ...                                 # the work to measure
    spent = proxy.snapshot() - before   # spent.round_trips, spent.statements
    await proxy.close()                 # or proxy.stop_thread()

A round trip is what a client waits for: every simple Query ('Q') and every Sync ('S')
of the extended protocol (Parse/Bind/Describe/Execute ... Sync) counts one, and so does a
Flush ('H'), which asyncpg sends after Parse/Describe of a statement its cache does not
hold yet and then waits on (a new statement costs Parse/Describe/Flush, then
Bind/Execute/Sync: two). That is what the driver really sends, so the statement cache,
its BEGIN/COMMIT (simple queries) and its pool's reset on release all show up.

The untyped start of a connection is handled here: an SSLRequest (or GSSENCRequest) is
refused by the proxy itself with 'N' (never forwarded: the proxy must read the stream in
clear, and libpq/asyncpg's default "prefer" mode then goes on in clear); a CancelRequest
arrives on a connection of its own and is forwarded untouched; a StartupMessage starts
the typed phase; Terminate ('X') ends the connection. Server-to-client bytes pass through
unread.

With `record=True` each round trip also keeps what it carried: the SQL of each Parse or
Query, and for a Bind the SQL of the prepared statement it runs (names are tracked per
connection), so a measured piece of work can be listed statement by statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
# The messages after which a client waits for the server: a simple Query, a Sync, and a
# Flush (asyncpg sends Parse/Describe/Flush to learn a new statement's types, and waits).
ROUND_TRIP_ENDS = {"Q": "query", "S": "sync", "H": "flush"}


@dataclass
class RoundTrip:
    """One wait of a client: the messages it sent before it, by kind, and their SQL."""

    connection: int
    kind: str  # "query" (simple protocol), "sync" or "flush" (extended protocol)
    statements: list[str] = field(default_factory=list)


@dataclass
class ConnectionStats:
    number: int
    round_trips: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    first_statement: str = ""
    open: bool = True
    cancel: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Counters at one moment; subtracting an earlier snapshot gives what was spent."""

    round_trips: int
    connections_opened: int
    per_connection: dict[int, int]
    log_length: int
    log: tuple[RoundTrip, ...] = ()

    def __sub__(self, earlier: Snapshot) -> Spent:
        per_connection = {
            number: count - earlier.per_connection.get(number, 0)
            for number, count in self.per_connection.items()
            if count != earlier.per_connection.get(number, 0)
        }
        return Spent(
            round_trips=self.round_trips - earlier.round_trips,
            connections_opened=self.connections_opened - earlier.connections_opened,
            per_connection=per_connection,
            round_trip_log=list(self.log[earlier.log_length :]),
        )


@dataclass
class Spent:
    round_trips: int
    connections_opened: int
    per_connection: dict[int, int]
    round_trip_log: list[RoundTrip]

    def statements(self) -> list[str]:
        """Every SQL statement sent, in order, one line per round trip ('; ' between the
        statements of a pipelined round trip)."""
        return ["; ".join(trip.statements) or f"({trip.kind})" for trip in self.round_trip_log]


def _cstring(body: bytes, start: int) -> tuple[str, int]:
    end = body.index(b"\x00", start)
    return body[start:end].decode("utf-8", "replace"), end + 1


def _short(sql: str, limit: int = 240) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class PgWireProxy:
    """Listens on 127.0.0.1 and relays every connection to `server_host:server_port`."""

    def __init__(self, server_host: str, server_port: int, *, record: bool = False) -> None:
        self.server_host = server_host
        self.server_port = server_port
        self.record = record
        self.connections: dict[int, ConnectionStats] = {}
        self.round_trips = 0
        self.log: list[RoundTrip] = []
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()  # snapshots may be taken from another thread
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def start_in_thread(self, port: int = 0) -> int:
        """Run the proxy on an event loop of its own, in a thread: the caller's loop may
        then block (a subprocess run that talks to the database through the proxy) and
        its load does not slow the relay."""
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start(port))
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="pg-wire-proxy", daemon=True)
        self._thread.start()
        started.wait(10)
        return self.port

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                round_trips=self.round_trips,
                connections_opened=len(self.connections),
                per_connection={n: c.round_trips for n, c in self.connections.items()},
                log_length=len(self.log),
                log=tuple(self.log) if self.record else (),
            )

    def listener_connections(self) -> set[int]:
        """Connections whose first statement was a LISTEN (an event listener's own)."""
        with self._lock:
            return {
                number
                for number, stats in self.connections.items()
                if stats.first_statement.upper().startswith("LISTEN")
            }

    async def quiet(self, *, still: float = 0.2, longest: float = 5.0) -> None:
        """Wait until no round trip has started for `still` seconds (work a request left
        running after its answer, such as a log write, is then counted too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + longest
        seen = self.round_trips
        while loop.time() < deadline:
            await asyncio.sleep(still)
            if self.round_trips == seen:
                return
            seen = self.round_trips

    # The relay -------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        stats = ConnectionStats(next(self._numbers))
        with self._lock:
            self.connections[stats.number] = stats
        server_writer: asyncio.StreamWriter | None = None
        try:
            server_reader, server_writer = await asyncio.open_connection(
                self.server_host, self.server_port
            )
            if not await self._startup(reader, writer, server_writer, stats):
                return
            back = asyncio.create_task(self._pipe(server_reader, writer))
            try:
                await self._client_messages(reader, server_writer, stats)
            finally:
                if stats.cancel:
                    # A cancel's answer is the server closing the connection: wait for it.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(back), 5)
                back.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await back
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            stats.open = False
            for stream in (writer, server_writer):
                if stream is not None:
                    stream.close()
            self._tasks.discard(task)

    async def _startup(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: asyncio.StreamWriter,
        stats: ConnectionStats,
    ) -> bool:
        """The untyped messages; True once a StartupMessage went through."""
        while True:
            header = await reader.readexactly(8)
            length, code = struct.unpack("!II", header)
            rest = await reader.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                writer.write(b"N")  # refused here, so the rest comes in clear
                await writer.drain()
                continue
            server.write(header + rest)
            await server.drain()
            if code == CANCEL_REQUEST:
                stats.cancel = True
                stats.messages["cancel"] += 1
                # Nothing else comes on a cancel connection; keep relaying until it closes.
                return True
            stats.messages["startup"] += 1
            return True

    async def _client_messages(
        self,
        reader: asyncio.StreamReader,
        server: asyncio.StreamWriter,
        stats: ConnectionStats,
    ) -> None:
        prepared: dict[str, str] = {}
        pending: list[str] = []
        while True:
            header = await reader.readexactly(5)
            kind = chr(header[0])
            (length,) = struct.unpack("!I", header[1:])
            body = await reader.readexactly(length - 4)
            server.write(header + body)
            stats.messages[kind] += 1
            if self.record or not stats.first_statement:
                if kind == "P":
                    name, at = _cstring(body, 0)
                    sql, _ = _cstring(body, at)
                    prepared[name] = sql
                    pending.append("parse: " + _short(sql))
                    stats.first_statement = stats.first_statement or _short(sql, 80)
                elif kind == "B":
                    _portal, at = _cstring(body, 0)
                    name, _ = _cstring(body, at)
                    pending.append("run: " + _short(prepared.get(name, f"<{name}>")))
                elif kind == "Q":
                    sql, _ = _cstring(body, 0)
                    pending.append(_short(sql))
                    stats.first_statement = stats.first_statement or _short(sql, 80)
                elif kind == "C" and body[:1] == b"S":
                    name, _ = _cstring(body, 1)
                    prepared.pop(name, None)
            if kind in ROUND_TRIP_ENDS:
                with self._lock:
                    self.round_trips += 1
                    stats.round_trips += 1
                    if self.record:
                        self.log.append(RoundTrip(stats.number, ROUND_TRIP_ENDS[kind], pending))
                pending = []
                await server.drain()
            elif kind == "X":
                await server.drain()
                return
            elif server.transport.get_write_buffer_size() > 1 << 20:
                await server.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.write_eof()
