"""A private PostgreSQL server for a test that must stop and start its database.

The shared server of the run (TEST_POSTGRES_SERVER) must never go down, so a test about
an outage gets a cluster of its own: `initdb` into a temporary folder (trust auth, UTF-8,
C locale, no fsync), the server on a free loopback port with its socket in that folder,
and a database created on it. `stop()` shuts it down the fast way (the clients' sessions
are ended, as by an operator's restart); `start()` brings it back on the same port and
folder, so a client's URL stays valid. Whatever happens in the test, the server is
stopped and the folder deleted afterwards (and at interpreter exit, as a last resort).

    with postgres_instance() as pg:       # or the `private_postgres` fixture
        url = pg.database_url              # postgres://postgres@127.0.0.1:PORT/gateway
        pg.stop()                          # the database is away...
        pg.start()                         # ...and back, same URL
        pg.freeze(); pg.thaw()             # the database hangs, then answers again

`astop()` / `astart()` do the same from a coroutine without blocking its event loop.

Cost, measured on a busy 2-core machine: 2.3 to 3 s to create and start (almost all of
it `initdb`), about 0.2 s for each later `start()`, under 0.1 s for each `stop()`.

PostgreSQL refuses to run as root: when the tests run as root, the server's programs run
as the `postgres` OS user (set by `subprocess.Popen(user=...)`, so the process we signal
is the postmaster itself) and the folder is handed to that user.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.servers import free_port

BIN = Path(os.environ.get("TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"  # who runs the server when we are root
DATABASE = "gateway"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
READY = "database system is ready to accept connections"
# Speed over durability: the cluster lives for one test.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "max_wal_senders": "0",
    "wal_level": "minimal",
    "logging_collector": "off",
    "log_min_messages": "warning",
}

_RUNNING: set[PostgresInstance] = set()


class PostgresInstance:
    """One private cluster: `create()` it, `start()`/`stop()` it, `destroy()` it."""

    def __init__(self, folder: Path, *, port: int | None = None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log_path = folder / "postgres.log"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._frozen = False
        # PostgreSQL refuses root; None runs the programs as ourselves.
        self._os_user = OS_USER if os.geteuid() == 0 else None

    # URLs -------------------------------------------------------------------------------

    def url(self, database: str = DATABASE) -> str:
        """A URL of the service's form (`postgres://`), trust auth needs no password."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def database_url(self) -> str:
        return self.url(DATABASE)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # Life cycle -------------------------------------------------------------------------

    def create(self) -> None:
        """initdb, start, and create the database `DATABASE`."""
        if self._os_user is not None:
            shutil.chown(self.folder, user=OS_USER, group=OS_USER)
        self._run(
            str(BIN / "initdb"),
            "--pgdata",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        self.start()
        self.sql(f'CREATE DATABASE "{DATABASE}"')

    def start(self) -> None:
        """Start the server (on the same port as before) and wait until it accepts queries."""
        if self.running:
            return
        settings = {
            **SERVER_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.folder),
        }
        command = [str(BIN / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest reaches us, not the server
                user=self._os_user,
                group=self._os_user,
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while READY not in self._log_since(offset):
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start:\n{self._log_since(offset)}")
            if time.monotonic() > deadline:
                self.stop(mode=signal.SIGQUIT)
                raise RuntimeError(f"PostgreSQL not ready in {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.02)

    def stop(self, mode: signal.Signals = signal.SIGINT) -> None:
        """Shut down: SIGINT is PostgreSQL's fast shutdown (sessions ended, a clean
        checkpoint), SIGQUIT its immediate one (as a crash); SIGKILL if it hangs."""
        if self._frozen:
            self.thaw()  # a stopped process would not act on the shutdown signal
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None or process.poll() is not None:
            return
        for sig in (mode, signal.SIGQUIT, signal.SIGKILL):
            with suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                continue

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: the database hangs without refusing (a
        stuck disk, a network that drops packets). Connections are accepted by the kernel
        and never answered; `thaw()` resumes them all."""
        self._signal_all(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        self._frozen = False
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig: signal.Signals) -> None:
        if not self.running:
            return
        assert self.process is not None
        for pid in (self.process.pid, *_children(self.process.pid)):
            with suppress(ProcessLookupError):
                os.kill(pid, sig)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self, mode: signal.Signals = signal.SIGINT) -> None:
        await asyncio.to_thread(self.stop, mode)

    def destroy(self) -> None:
        """Stop the server if it runs and delete the whole folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    # Helpers ----------------------------------------------------------------------------

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql over the socket; its output (unaligned, no header)."""
        result = subprocess.run(
            [
                str(BIN / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--tuples-only",
                "--no-align",
                "--set=ON_ERROR_STOP=1",
                f"--host={self.folder}",
                f"--port={self.port}",
                "--username=postgres",
                f"--dbname={database}",
                f"--command={statement}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql {statement!r} failed: {result.stderr}")
        return result.stdout.strip()

    def log(self) -> str:
        return self._log_since(0)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=self._os_user,
            group=self._os_user,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (PostgreSQL's backends and helpers)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # /proc/PID/stat: "pid (comm) state ppid ...": comm may hold spaces, so split
            # after its closing parenthesis.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    """A created and running private cluster; stopped and deleted on the way out.
    Skips the test where PostgreSQL's programs are not installed."""
    if not (BIN / "postgres").exists():
        pytest.skip(f"no PostgreSQL programs in {BIN} (set TEST_POSTGRES_BIN)")
    # Not under pytest's tmp_path: that folder is private to root, and the server's user
    # must reach its own. /tmp lets everyone through; the folder itself is made its.
    instance = PostgresInstance(Path(tempfile.mkdtemp(prefix="cgw-pg-")))
    try:
        instance.create()
        yield instance
    finally:
        instance.destroy()


@pytest.fixture
def private_postgres() -> Iterator[PostgresInstance]:
    """A private PostgreSQL cluster of this test (see the module's documentation)."""
    with postgres_instance() as instance:
        yield instance


@atexit.register
def _stop_leftovers() -> None:
    for instance in list(_RUNNING):
        instance.destroy()
