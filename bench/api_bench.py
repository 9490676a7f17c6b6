"""Load a real server with REST and GraphQL reads of the same data, and compare.

    .venv/bin/python bench/api_bench.py [--database-url URL] [--seconds 10] [--concurrency 16]

Starts `chat-gateway serve` on a scratch database (SQLite by default) in a subprocess,
fills one session with messages through the REST door, then for each scenario sends
requests from `--concurrency` loopback connections for `--seconds` and prints
requests per second, latency percentiles and the server's resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

HISTORY_QUERY = """query History($id: ID!, $after: String) {
  session(id: $id) {
    messages(first: 20, after: $after) {
      totalCount
      edges { node { id type content createdAt metadata } }
    }
  }
}"""


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def seed(base: str, key: str, user_id: str, turns: int) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/api/v1/sessions", json={"user_id": user_id}) as response:
            session_id: str = (await response.json())["data"]["session_id"]
        for turn in range(turns):
            body = {
                "user_id": user_id,
                "message": f"message number {turn} " + "lorem " * 20,
                "metadata": {"turn": turn},
            }
            async with http.post(f"{base}/api/v1/sessions/{session_id}/messages", json=body) as r:
                assert r.status == 200, await r.text()
    return session_id


async def run(
    base: str, key: str, scenario: Scenario, seconds: float, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with http.request(
                    scenario.method, base + scenario.path, json=scenario.body
                ) as r:
                    payload = await r.read()
                    if r.status != 200 or b'"errors"' in payload:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def cursor_after(base: str, key: str, session_id: str, count: int) -> str:
    """The cursor of the `count`-th message: GraphQL's way to ask for REST's page 5."""
    query = (
        "query($id: ID!, $n: Int) "
        "{ session(id: $id) { messages(first: $n) { pageInfo { endCursor } } } }"
    )
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        body = {"query": query, "variables": {"id": session_id, "n": count}}
        async with http.post(f"{base}/graphql", json=body) as response:
            cursor: str = (await response.json())["data"]["session"]["messages"]["pageInfo"][
                "endCursor"
            ]
    return cursor


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "chat-gateway"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@dataclass
class Gateway:
    base: str
    account: dict[str, str]  # user_id and api_key of the user made for the run
    pid: int
    database: str


@asynccontextmanager
async def running_gateway(
    database_url: str | None, *, admin: bool = False, env: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    """`chat-gateway serve` on a migrated database (a scratch SQLite file by default), with
    one user made for the run; stopped on exit."""
    url = database_url or f"sqlite://{tempfile.mkdtemp()}/bench.sqlite3"
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "ACCESS_LOG": "false",
        "BOOTSTRAP_ADMIN": "false",
        # The benchmarks send far more than a user's allowance with one key: rate limits
        # are off unless a run asks for them (bench/rate_limit_cost.py measures them).
        "RATE_LIMIT_PER_MINUTE": "0",
        "REPLY_RATE_LIMIT_PER_MINUTE": "0",
        "MAX_STREAMS_PER_USER": "0",
        **(env or {}),
    }
    cli(["migrate"], environment)
    account = json.loads(
        cli(["user", "create", "bench", *(["--admin"] if admin else [])], environment)
    )
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [str(BIN / "chat-gateway"), "serve", "--no-migrate"],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        yield Gateway(base, account, server.pid, url.split(":", 1)[0])
    finally:
        server.terminate()
        server.wait(timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--turns", type=int, default=100, help="turns stored in the session")
    options = parser.parse_args()

    async with running_gateway(options.database_url) as gateway:
        base, account = gateway.base, gateway.account
        session_id = await seed(base, account["api_key"], account["user_id"], options.turns)
        deep_after = await cursor_after(base, account["api_key"], session_id, 80)
        scenarios = [
            Scenario(
                "REST history page 1",
                "GET",
                f"/api/v1/sessions/{session_id}/messages?page_size=20&page_num=1",
            ),
            Scenario(
                "GraphQL session.messages(first: 20)",
                "POST",
                "/graphql",
                {"query": HISTORY_QUERY, "variables": {"id": session_id}},
            ),
            Scenario(
                "REST history page 5",
                "GET",
                f"/api/v1/sessions/{session_id}/messages?page_size=20&page_num=5",
            ),
            Scenario(
                "GraphQL messages(first: 20, after: #80)",
                "POST",
                "/graphql",
                {"query": HISTORY_QUERY, "variables": {"id": session_id, "after": deep_after}},
            ),
        ]
        print(
            f"database: {gateway.database}, {options.turns * 2} messages, "
            f"{options.concurrency} connections, {options.seconds:.0f} s each"
        )
        print(
            f"{'scenario':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MiB':>8}"
        )
        for scenario in scenarios:
            await run(base, account["api_key"], scenario, 1.0, options.concurrency)  # warm up
            result = await run(
                base, account["api_key"], scenario, options.seconds, options.concurrency
            )
            print(
                f"{scenario.name:42} {result['rps']:8.0f} {result['p50_ms']:8.2f} "
                f"{result['p99_ms']:8.2f} {result['errors']:7d} {rss_mib(gateway.pid):8.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
