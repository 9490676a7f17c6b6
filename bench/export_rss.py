"""Export memory: the server's RSS while it streams a 100,000-message session.

    .venv/bin/python bench/export_rss.py [--messages 100000] [--json out.json]
        [--postgres-server postgres://postgres@127.0.0.1:5432/postgres] [--smoke]

For each backend (a scratch SQLite file, then a scratch PostgreSQL database) it starts
`chat-gateway serve` (uvicorn, one worker, its own process), makes a user with two
sessions and fills them in SQL (generate_series on PostgreSQL, executemany on SQLite;
user messages of 60-400 characters, replies of 300-2,500 with a code block in every
tenth, reply metadata as a turn writes it): the long one with --messages messages, the
short one with a tenth of them. Then, for each format (JSON, Markdown):

- long / short: `GET /api/v1/sessions/{id}/export?format=...` through aiohttp, the body
  read as it comes and counted (and checked: every message once, the document's end),
  while a thread samples the server's VmRSS (/proc/<pid>/status) every 50 ms. Reported:
  RSS before, the peak during (the larger of the samples and the kernel's own VmHWM,
  reset just before through /proc/<pid>/clear_refs), after, bytes, seconds. If the
  export streams, the peak grows no more for the long session than for the short one.
- in one go: the baseline. A child process builds the same long document the way a
  non-streamed export would (one query for every message, every row an object, the
  whole document in memory: the service's own shape functions, no paging) and reports
  its RSS growth. The ratio is that growth over the streamed export's.

Prints a table, and writes every figure as JSON with --json. --smoke runs 1,000 and
100 messages (it is a test of the benchmark: tests/bench/test_export_rss_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_bench import ROOT, Gateway, running_gateway  # noqa: E402

from db import scratch  # noqa: E402

SAMPLE_SECONDS = 0.05
FORMATS = ("json", "markdown")
PROSE = (
    "The quick brown fox jumps over the lazy dog while a café in Tōkyō (東京) serves "
    "naïve espresso; numbers 12345 and symbols (a, b) - [c] follow. "
)
CODE = '\n\n```python\nprint("hello, world")\n```\n'
REPLY_METADATA = (
    '{"model_name": "bench-model", "model_version": "1", "provider": "echo", '
    '"usage": {"prompt_tokens": %d, "completion_tokens": %d}, "latency_ms": %d, '
    '"finish_reason": "stop"}'
)


# Memory of a process, from /proc -------------------------------------------------------------


def status_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int | str) -> bool:
    """Reset the kernel's record of the process's peak RSS (VmHWM); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Sampler:
    """VmRSS of a process every SAMPLE_SECONDS, in a thread (the event loop is busy reading)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(status_kib(self.pid, "VmRSS"))
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(status_kib(self.pid, "VmRSS"))


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# Seeding --------------------------------------------------------------------------------


def lengths(g: int) -> int:
    """The length of message number `g`: a question (odd) or a reply (even)."""
    return 60 + (g * 7919) % 340 if g % 2 else 300 + (g * 104729) % 2200


def content_of(g: int, prose: str) -> str:
    start = (g * 13) % 100
    if g % 2:
        return f"Question {g}: " + prose[start : start + lengths(g)]
    text = f"Answer {g}:\n\n" + prose[start : start + lengths(g)]
    return text + CODE if g % 10 == 0 else text


async def seed_postgres(url: str, session_id: str, count: int) -> None:
    connection = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        column = await connection.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'messages' AND column_name = 'metadata'"
        )
        cast = column if column in ("json", "jsonb") else "text"
        metadata = (
            '\'{"model_name": "bench-model", "model_version": "1", "provider": '
            '"echo", "usage": {"prompt_tokens": \' || g || \', "completion_tokens": \' '
            '|| (g % 700) || \'}, "latency_ms": \' || (g % 900) || \', "finish_reason": '
            '"stop"}\''
        )
        # The same texts as content_of (SQL strings count from 1).
        await connection.execute(
            'INSERT INTO "messages" ("id", "session_id", "seq", "type", "content", '
            '"metadata", "created_at") '
            "SELECT gen_random_uuid(), $1::uuid, g, "
            "CASE WHEN g % 2 = 1 THEN 'user' ELSE 'ai' END, "
            "CASE WHEN g % 2 = 1 "
            "  THEN 'Question ' || g || ': ' "
            "    || substr($3, 1 + (g * 13) % 100, (60 + (g::bigint * 7919) % 340)::int) "
            "  ELSE 'Answer ' || g || E':\\n\\n' "
            "    || substr($3, 1 + (g * 13) % 100, (300 + (g::bigint * 104729) % 2200)::int) "
            "    || CASE WHEN g % 10 = 0 THEN $4 ELSE '' END END, "
            f"CASE WHEN g % 2 = 0 THEN ({metadata})::{cast} END, "
            "now() - make_interval(secs => ($2 - g) * 0.5) "
            "FROM generate_series(1, $2::int) g",
            session_id,
            count,
            PROSE * 40,
            CODE,
        )
        await connection.execute(
            'UPDATE "chat_sessions" SET "last_seq" = $2 WHERE "id" = $1::uuid', session_id, count
        )
        await connection.execute('ANALYZE "messages"')
    finally:
        await connection.close()


def seed_sqlite(url: str, session_id: str, count: int) -> None:
    path = url.split("://", 1)[1]
    prose = PROSE * 40
    start = datetime.now(UTC) - timedelta(seconds=count * 0.5)
    with sqlite3.connect(path, timeout=30) as connection:

        def rows(low: int, high: int) -> list[tuple[Any, ...]]:
            return [
                (
                    str(uuid.uuid4()),
                    session_id,
                    g,
                    "user" if g % 2 else "ai",
                    content_of(g, prose),
                    None if g % 2 else REPLY_METADATA % (g, g % 700, g % 900),
                    (start + timedelta(seconds=g * 0.5)).isoformat(" "),
                )
                for g in range(low, high + 1)
            ]

        for low in range(1, count + 1, 5000):
            connection.executemany(
                'INSERT INTO "messages" ("id", "session_id", "seq", "type", "content", '
                '"metadata", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?)',
                rows(low, min(low + 4999, count)),
            )
        connection.execute(
            'UPDATE "chat_sessions" SET "last_seq" = ? WHERE "id" = ?', (count, session_id)
        )


async def new_session(base: str, account: dict[str, str]) -> str:
    headers = {"Authorization": f"Bearer {account['api_key']}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{base}/api/v1/sessions", json={"user_id": account["user_id"]}) as response,
    ):
        assert response.status == 200, await response.text()
        session_id: str = (await response.json())["data"]["session_id"]
        return session_id


# Measuring ------------------------------------------------------------------------------


async def export(gateway: Gateway, session_id: str, fmt: str, count: int) -> dict[str, Any]:
    """One export over HTTP with the server's RSS sampled; the body counted and checked."""
    url = f"{gateway.base}/api/v1/sessions/{session_id}/export?format={fmt}"
    headers = {"Authorization": f"Bearer {gateway.account['api_key']}"}
    marker = b'\n{"message_id":' if fmt == "json" else b"\n## **"
    pid = gateway.pid
    await asyncio.sleep(0.3)  # settle
    before = status_kib(pid, "VmRSS")
    kernel_peak = reset_peak(pid)
    size = found = 0
    tail = b""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    started = time.perf_counter()
    with Sampler(pid) as sampler:
        async with (
            aiohttp.ClientSession(headers=headers, timeout=timeout) as http,
            http.get(url) as response,
        ):
            assert response.status == 200, await response.text()
            disposition = response.headers.get("Content-Disposition", "")
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                window = tail + chunk
                found += window.count(marker) - tail.count(marker)
                tail = window[-len(marker) :]
        seconds = time.perf_counter() - started
    peak = max(sampler.samples)
    if kernel_peak:
        peak = max(peak, status_kib(pid, "VmHWM"))
    await asyncio.sleep(0.5)
    after = status_kib(pid, "VmRSS")
    ending = b"]}\n" if fmt == "json" else f"{count} messages.*\n".encode()
    assert found == count, f"{fmt}: {found} messages in the export, {count} stored"
    assert tail.endswith(ending[-len(tail) :]), f"{fmt}: the document ends with {tail!r}"
    assert disposition.startswith("attachment; filename="), disposition
    return {
        "messages": count,
        "bytes": size,
        "seconds": round(seconds, 3),
        "mib_per_second": round(size / 2**20 / seconds, 1),
        "rss_before_mib": mib(before),
        "rss_peak_mib": mib(peak),
        "rss_after_mib": mib(after),
        "growth_mib": mib(peak - before),
        "samples": len(sampler.samples),
        "kernel_peak": kernel_peak,
    }


# A child process: the same document built in one go, as a non-streamed export would.
_IN_ONE_GO = r"""
import asyncio, json, sys, time
from pathlib import Path
import orjson
from tortoise import Tortoise
from db.config import tortoise_config
from db.models import ChatSession, Message
from db.services import exports

def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

async def main(url, session_id, fmt):
    await Tortoise.init(config=tortoise_config(url))
    try:
        session = await ChatSession.get(id=session_id)
        await Message.filter(session_id=session_id, seq=1).first()  # warm: connection, models
        before = kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        started = time.perf_counter()
        count = session.last_seq
        history = Message.filter(session_id=session_id, seq__gte=1, seq__lte=count)
        rows = await history.order_by("seq")
        if fmt == "json":
            body = orjson.dumps({"session": exports.session_out(session, count),
                                 "messages": [exports.message_out(m) for m in rows]})
        else:
            body = "".join(exports.markdown_message(m) for m in rows).encode()
        seconds = time.perf_counter() - started
        peak = max(kib("VmHWM"), kib("VmRSS"))
        print(json.dumps({"messages": len(rows), "bytes": len(body), "seconds": seconds,
                          "before": before, "peak": peak}))
    finally:
        await Tortoise.close_connections()

asyncio.run(main(*sys.argv[1:]))
"""


def in_one_go(url: str, session_id: str, fmt: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _IN_ONE_GO, url, session_id, fmt],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the one-go build failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "messages": figures["messages"],
        "bytes": figures["bytes"],
        "seconds": round(figures["seconds"], 3),
        "rss_before_mib": mib(figures["before"]),
        "rss_peak_mib": mib(figures["peak"]),
        "growth_mib": mib(figures["peak"] - figures["before"]),
    }


# The run --------------------------------------------------------------------------------


@asynccontextmanager
async def database(backend: str, postgres_server: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="export-rss-") as folder:
            yield f"sqlite://{folder}/bench.sqlite3"
    else:
        url = await scratch.create_postgres(postgres_server, prefix="cgw_bench")
        try:
            yield url
        finally:
            await scratch.drop_postgres(postgres_server, url)


async def run_backend(backend: str, options: argparse.Namespace) -> dict[str, Any]:
    long_count, short_count = options.messages, max(2, options.messages // 10)
    async with (
        database(backend, options.postgres_server) as url,
        running_gateway(url, env={"WORKERS": "1"}) as gateway,
    ):
        sessions = {}
        for name, count in (("long", long_count), ("short", short_count)):
            session_id = await new_session(gateway.base, gateway.account)
            started = time.perf_counter()
            if backend == "postgres":
                await seed_postgres(url, session_id, count)
            else:
                await asyncio.to_thread(seed_sqlite, url, session_id, count)
            print(
                f"{backend}: seeded {count} messages in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            sessions[name] = (session_id, count)
        for fmt in FORMATS:  # warm-up: every code path once, before any figure
            await export(gateway, sessions["short"][0], fmt, sessions["short"][1])
        results: dict[str, Any] = {"idle_rss_mib": mib(status_kib(gateway.pid, "VmRSS"))}
        for fmt in FORMATS:
            long_id, short_id = sessions["long"][0], sessions["short"][0]
            results[fmt] = {
                "long": await export(gateway, long_id, fmt, long_count),
                "short": await export(gateway, short_id, fmt, short_count),
            }
            results[fmt]["in_one_go"] = await asyncio.to_thread(
                in_one_go, url, sessions["long"][0], fmt
            )
            # Below 1 MiB the streamed growth is within the noise of a process's RSS: the
            # ratio is then a lower bound.
            streamed = results[fmt]["long"]["growth_mib"]
            results[fmt]["ratio"] = round(
                results[fmt]["in_one_go"]["growth_mib"] / max(streamed, 1.0), 1
            )
            results[fmt]["ratio_is_lower_bound"] = streamed < 1.0
            print(f"{backend}: {fmt} done", flush=True)
        return results


def print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'backend':9} {'format':9} {'case':10} {'messages':>9} {'MiB':>8} {'s':>7} "
        f"{'RSS before':>11} {'peak':>8} {'after':>8} {'growth':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for backend, results in report["backends"].items():
        for fmt in FORMATS:
            for case in ("long", "short", "in_one_go"):
                row = results[fmt][case]
                after = row.get("rss_after_mib")
                print(
                    f"{backend:9} {fmt:9} {case:10} {row['messages']:9d} "
                    f"{row['bytes'] / 2**20:8.1f} {row['seconds']:7.2f} "
                    f"{row['rss_before_mib']:11.1f} {row['rss_peak_mib']:8.1f} "
                    f"{'-' if after is None else f'{after:.1f}':>8} {row['growth_mib']:8.1f}"
                )
            at_least = ">= " if results[fmt]["ratio_is_lower_bound"] else ""
            print(
                f"{'':9} {fmt:9} in one go / streamed (long) RSS growth: "
                f"{at_least}{results[fmt]['ratio']:.1f}x"
            )
    print(
        "\nlong/short: exports through the server (RSS of the server process); "
        "in_one_go: the same long document built whole in a child process."
    )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--postgres-server", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--smoke", action="store_true", help="1,000 messages: a quick check")
    options = parser.parse_args()
    if options.smoke:
        options.messages = 1_000
    report: dict[str, Any] = {
        "config": {
            "messages": options.messages,
            "short_messages": max(2, options.messages // 10),
            "page_size": _page_size(),
            "sample_seconds": SAMPLE_SECONDS,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "backends": {},
    }
    for backend in options.backends.split(","):
        report["backends"][backend] = await run_backend(backend, options)
    print_table(report)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {options.json}")
    return 0


def _page_size() -> int:
    from db.services.exports import PAGE_SIZE

    return PAGE_SIZE


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
