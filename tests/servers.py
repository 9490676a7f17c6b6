"""Real processes for tests: servers on free loopback ports, scratch databases, CLI runs.

`servers` (a fixture factory) starts a command as a subprocess in its own process group,
writes its output to a file, waits until GET /healthz answers and always kills the whole
group when the test ends. Import it into a conftest.py to use it:

    from tests.servers import servers

    __all__ = ["servers"]
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from db import scratch
from gateway.settings import Settings
from tests.conftest import BACKEND, POSTGRES_SERVER

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHAT_GATEWAY = str(BIN / "chat-gateway")
READY_TIMEOUT = 60.0
# The service's own variables: a child gets only the ones a test gives it.
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
# Servers not stopped yet: a last sweep at exit catches any a crashed test left behind.
_RUNNING: set[Server] = set()
_LOG_NUMBERS = itertools.count(1)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment without the service's settings, plus `overrides`.

    PYTHONUNBUFFERED goes too: what a server prints must reach a pipe or file without it.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTING_NAMES and name != "PYTHONUNBUFFERED"
    }
    env.update(overrides)
    return env


def uvicorn_command(port: int) -> list[str]:
    host = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "uvicorn", "gateway.asgi:app", *host]


def run_cli(
    *args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`chat-gateway ARGS` to completion, output captured as text."""
    return subprocess.run(
        [CHAT_GATEWAY, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Server:
    """One started process that should end up answering HTTP on `port`."""

    def __init__(
        self, command: Sequence[str], *, port: int, env: Mapping[str, str], cwd: Path, logs: Path
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = logs / f"server-{next(_LOG_NUMBERS)}-{port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches every child
            )
        _RUNNING.add(self)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"server exited with status {self.process.returncode}:\n{self.output()}"
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until GET /healthz answers 200."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                self._check_running()
                try:
                    if http.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"server did not answer within {timeout} s:\n{self.output()}")

    async def wait_ready_async(self, seconds: float = READY_TIMEOUT) -> None:
        """The same, without blocking the event loop."""
        async with asyncio.timeout(seconds), httpx.AsyncClient(base_url=self.base_url) as http:
            while True:
                self._check_running()
                try:
                    if (await http.get("/healthz", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    def wait_for_output(self, text: str, timeout: float = READY_TIMEOUT) -> str:
        """Block until the output contains `text`; returns the whole output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output()
            if text in output:
                return output
            self._check_running()
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not printed within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        """End the whole process group: politely, then by force."""
        _RUNNING.discard(self)
        if self.process.returncode is not None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # The leader may be gone while children linger; the group must go too.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_RUNNING):
        server.stop()


StartServer = Callable[..., Server]


# What a server prints only for an error of its own (never for a client's mistake).
INTERNAL_ERROR_SIGNS = ("internal error", "Traceback (most recent call last)")


@pytest.fixture
def servers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartServer]:
    """start(env=..., command=None, port=None, cwd=None) -> Server; all stopped at teardown.

    Without `command` it runs `python -m uvicorn gateway.asgi:app` on a free port.
    Starting does not wait: call `wait_ready()` (or `wait_ready_async()`).
    At teardown, a server whose output shows an internal error fails the test, unless the
    test is marked `internal_errors` (the suite's invariant, for servers in other processes).
    """
    started: list[Server] = []

    def start(
        *,
        env: Mapping[str, str],
        command: Sequence[str] | None = None,
        port: int | None = None,
        cwd: Path | None = None,
    ) -> Server:
        port = port or free_port()
        command = command or uvicorn_command(port)
        server = Server(command, port=port, env=env, cwd=cwd or tmp_path, logs=tmp_path)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
    if request.node.get_closest_marker("internal_errors") is None:
        for server in started:
            output = server.output()
            signs = [sign for sign in INTERNAL_ERROR_SIGNS if sign in output]
            assert not signs, f"server printed {signs}:\n{output}"


@asynccontextmanager
async def scratch_database_async(folder: Path, name: str = "scratch") -> AsyncIterator[str]:
    """An empty database of the backend under test (no tables); dropped afterwards."""
    if BACKEND == "postgres":
        url = await scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test")
        try:
            yield url
        finally:
            await scratch.drop_postgres(POSTGRES_SERVER, url)
    else:
        yield f"sqlite://{folder / f'{name}.sqlite3'}"


@contextmanager
def scratch_database(folder: Path, name: str = "scratch") -> Iterator[str]:
    """The same, for synchronous fixtures and tests (no event loop may be running)."""
    if BACKEND == "postgres":
        url = asyncio.run(scratch.create_postgres(POSTGRES_SERVER, prefix="cgw_test"))
        try:
            yield url
        finally:
            asyncio.run(scratch.drop_postgres(POSTGRES_SERVER, url))
    else:
        yield f"sqlite://{folder / f'{name}.sqlite3'}"


@dataclass(frozen=True)
class LiveServer:
    http_url: str
    ws_url: str


@asynccontextmanager
async def live_server(app: Starlette) -> AsyncIterator[LiveServer]:
    """`app` behind a real uvicorn on a loopback port, in the test's own event loop.

    The app's lifespan is already running (the `app` fixture), so uvicorn must not run it
    again; the test's database and provider registry are shared with it.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises why it could not start
                    raise AssertionError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql")
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(15):
                await task
        finally:
            if not task.done():
                task.cancel()
