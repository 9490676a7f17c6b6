"""What rate limiting costs per request: the same load with the limits off and on.

    .venv/bin/python bench/rate_limit_cost.py [--database-url postgres://...] [--seconds 5]
        [--concurrency 16] [--rounds 3] [--redis-url redis://127.0.0.1:6379/0]

`chat-gateway serve` (WORKERS=1) on a scratch PostgreSQL database, once per mode:
- off:   RATE_LIMIT_PER_MINUTE=0, REPLY_RATE_LIMIT_PER_MINUTE=0, MAX_STREAMS_PER_USER=0;
- on:    limits on but never reached (RATE_LIMIT_PER_MINUTE=100000000), counts shared
         through PostgreSQL's rate_windows (flushed every 0.5 s);
- redis: the same through Redis (with --redis-url).
Load: GET /api/v1/model-configs (REST) and `{ me { name } }` (GraphQL, the compiled path)
from --concurrency clients for --seconds, modes alternating for --rounds rounds, median
req/s reported. Statements per request: each gateway talks to PostgreSQL through
bench/pg_wire.py, which counts round trips (the event listener's own connection left out)
during a run of its own; the background flushes are included, spread over the requests.
Prints a JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from api_bench import Scenario, running_gateway  # noqa: E402
from api_bench import run as load_run  # noqa: E402
from pg_wire import PgWireProxy  # noqa: E402

from db import scratch  # noqa: E402

OFF = {
    "RATE_LIMIT_PER_MINUTE": "0",
    "REPLY_RATE_LIMIT_PER_MINUTE": "0",
    "MAX_STREAMS_PER_USER": "0",
}
HUGE = {"RATE_LIMIT_PER_MINUTE": "100000000", "REPLY_RATE_LIMIT_PER_MINUTE": "100000000"}
SCENARIOS = [
    Scenario("rest-model-configs", "GET", "/api/v1/model-configs"),
    Scenario("graphql-me", "POST", "/graphql", {"query": "{ me { name } }"}),
]


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def modes(redis_url: str | None) -> dict[str, dict[str, str]]:
    found = {"off": OFF, "on": HUGE}
    if redis_url:
        prefix = f"cgw:bench:{uuid.uuid4().hex}:"
        found["redis"] = {**HUGE, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    return found


async def throughput(
    url: str, env: dict[str, str], seconds: float, concurrency: int
) -> dict[str, float]:
    async with running_gateway(url, env={**env, "WORKERS": "1"}) as gateway:
        key = gateway.account["api_key"]
        results = {}
        for scenario in SCENARIOS:
            await load_run(gateway.base, key, scenario, 0.5, concurrency)  # warm-up
            measured = await load_run(gateway.base, key, scenario, seconds, concurrency)
            assert measured["errors"] == 0, measured
            results[scenario.name] = measured["rps"]
        return results


async def statements(
    url: str, env: dict[str, str], seconds: float, concurrency: int
) -> dict[str, float]:
    server = urlsplit(url)
    proxy = PgWireProxy(server.hostname or "127.0.0.1", server.port or 5432)
    port = proxy.start_in_thread()  # the CLI's migrate blocks this loop
    try:
        async with running_gateway(with_port(url, port), env={**env, "WORKERS": "1"}) as gateway:
            key = gateway.account["api_key"]
            listeners = proxy.listener_connections()
            results = {}
            for scenario in SCENARIOS:
                await load_run(gateway.base, key, scenario, 0.5, concurrency)  # warm-up
                await proxy.quiet()
                before = proxy.snapshot()
                measured = await load_run(gateway.base, key, scenario, seconds, concurrency)
                await asyncio.sleep(1.0)  # the last counts flushed
                spent = proxy.snapshot() - before
                trips = sum(
                    count
                    for number, count in spent.per_connection.items()
                    if number not in listeners
                )
                results[scenario.name] = trips / measured["requests"]
            return results
    finally:
        proxy.stop_thread()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url")
    options = parser.parse_args()

    url = await scratch.create_postgres(options.database_url, prefix="cgw_bench")
    try:
        chosen = modes(options.redis_url)
        per_request = {
            mode: await statements(url, env, options.seconds, options.concurrency)
            for mode, env in chosen.items()
        }
        rps: dict[str, dict[str, list[float]]] = {mode: {} for mode in chosen}
        for _ in range(options.rounds):
            for mode, env in chosen.items():
                measured = await throughput(url, env, options.seconds, options.concurrency)
                for name, value in measured.items():
                    rps[mode].setdefault(name, []).append(value)
    finally:
        await scratch.drop_postgres(options.database_url, url)
    report: dict[str, Any] = {
        mode: {
            name: {
                "rps_median": round(statistics.median(values), 1),
                "rps_rounds": [round(value, 1) for value in values],
                "round_trips_per_request": round(per_request[mode][name], 4),
            }
            for name, values in rps[mode].items()
        }
        for mode in chosen
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
