"""What the gateway adds to a model reply: gateway latency minus upstream latency.

    .venv/bin/python bench/provider_overhead.py [--database-url URL] [--requests 400]

Starts a Chat Completions upstream on loopback (bench/loopback_upstream.py's, in this
process; it answers after --upstream-ms),
then `chat-gateway serve` on a scratch database with an `openai` model config pointing
at it. Each send carries a unique marker the upstream reads back, so every request's
upstream time (arrival to last byte written) is paired with the client's end-to-end
time. Prints p50/p99 of the difference, for whole and for streamed (SSE) replies, at
concurrency 1 and 8 (one session per concurrent client: turns of one session queue).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import Gateway, free_port, rss_mib, running_gateway
from loopback_upstream import Upstream

KEY_ENV = "BENCH_UPSTREAM_KEY"


async def graphql(http: aiohttp.ClientSession, base: str, query: str, **variables: object) -> dict:
    async with http.post(f"{base}/graphql", json={"query": query, "variables": variables}) as r:
        answer = await r.json()
    assert "errors" not in answer, answer
    return answer["data"]


async def measure(
    base: str,
    key: str,
    user_id: str,
    sessions: list[str],
    upstream: Upstream,
    count: int,
    stream: bool,
) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    if stream:
        headers["Accept"] = "text/event-stream"
    overheads: list[float] = []
    queue = asyncio.Queue[int]()
    for number in range(count):
        queue.put_nowait(number)
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker(session_id: str) -> None:
            while not queue.empty():
                queue.get_nowait()
                marker = uuid.uuid4().hex
                body = {"user_id": user_id, "message": f"question {marker}"}
                started = time.perf_counter()
                async with http.post(
                    f"{base}/api/v1/sessions/{session_id}/messages", json=body
                ) as r:
                    payload = await r.read()
                    assert r.status == 200 and b'"error"' not in payload, payload[:300]
                overheads.append(time.perf_counter() - started - upstream.took.pop(marker))

        await asyncio.gather(*(worker(session_id) for session_id in sessions))
    return overheads


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--upstream-ms", type=float, default=20)
    options = parser.parse_args()

    upstream = Upstream(options.upstream_ms / 1000)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    upstream_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()

    gateway = running_gateway(options.database_url, admin=True, env={KEY_ENV: "bench-key"})
    try:
        async with gateway as running:
            await compare(running, upstream, upstream_port, options)
    finally:
        await runner.cleanup()


async def compare(
    gateway: Gateway, upstream: Upstream, upstream_port: int, options: argparse.Namespace
) -> None:
    """Create the config and sessions, then print the overhead table."""
    base, admin = gateway.base, gateway.account
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {admin['api_key']}"}
    ) as http:
        created = await graphql(
            http,
            base,
            'mutation($u: String!) { createModelConfig(input: {provider: "openai", '
            'modelName: "bench-model", modelVersion: "1", baseUrl: $u, '
            f'apiKeyEnv: "{KEY_ENV}", parameters: {{max_history_messages: 2}}}}) {{ id }} }}',
            u=f"http://127.0.0.1:{upstream_port}/v1",
        )
        config_id = created["createModelConfig"]["id"]
        sessions = [
            (
                await graphql(
                    http,
                    base,
                    "mutation($c: ID!) { createSession(input: {modelConfigId: $c}) { id } }",
                    c=config_id,
                )
            )["createSession"]["id"]
            for _ in range(8)
        ]
    print(
        f"database: {gateway.database}; upstream answers after "
        f"{options.upstream_ms:.0f} ms; {options.requests} replies per row"
    )
    print(f"{'reply':10} {'clients':>7} {'overhead p50 ms':>16} {'p99 ms':>8} {'RSS MiB':>8}")
    for stream in (False, True):
        for clients in (1, 8):
            await measure(
                base,
                admin["api_key"],
                admin["user_id"],
                sessions[:clients],
                upstream,
                20,
                stream,
            )
            result = sorted(
                await measure(
                    base,
                    admin["api_key"],
                    admin["user_id"],
                    sessions[:clients],
                    upstream,
                    options.requests,
                    stream,
                )
            )
            p99 = result[max(0, int(len(result) * 0.99) - 1)]
            print(
                f"{'streamed' if stream else 'whole':10} {clients:7d} "
                f"{statistics.median(result) * 1000:16.2f} {p99 * 1000:8.2f} "
                f"{rss_mib(gateway.pid):8.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
