"""Prometheus metrics: what they count, the service layer's observer, and GET /metrics.

With several worker processes (`chat-gateway serve --workers N` sets
PROMETHEUS_MULTIPROC_DIR to a fresh folder before any worker starts) every process writes
its values to files there and a scrape, answered by any one worker, sums them all; gauges
sum the live processes' values (`livesum`).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise import connections

from db.ports import ReplyReport

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
# Labels a client chooses (GraphQL operation names) are kept to this many per process;
# later ones are counted as "other", so no client can grow the series without end.
MAX_OPERATIONS = 100
MAX_OPERATION_CHARS = 64
POOL_REFRESH_SECONDS = 5.0

# No `*_created` series: they double a scrape's size and nobody here graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_REPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180)

http_requests = Counter(
    "http_requests", "HTTP requests answered, by route template", ["route", "method", "status"]
)
http_duration = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (a stream: until it ends)",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
model_replies = Counter(
    "model_replies",
    "Model replies, by outcome (ok, cancelled, or the kind of failure)",
    ["provider", "config", "outcome"],
)
model_errors = Counter(
    "model_errors", "Model replies that failed, by kind", ["provider", "config", "kind"]
)
model_reply_seconds = Histogram(
    "model_reply_seconds",
    "Time a model took to reply",
    ["provider", "config"],
    buckets=_REPLY_BUCKETS,
)
model_first_token_seconds = Histogram(
    "model_time_to_first_token_seconds",
    "Time to a streamed reply's first piece",
    ["provider", "config"],
    buckets=_REPLY_BUCKETS,
)
model_tokens = Counter("model_tokens", "Tokens providers reported", ["provider", "config", "kind"])
internal_errors = Counter("internal_errors", "Requests answered with an internal error (500)")
log_entries = Counter("log_entries_written", "Operation log entries written", ["level"])
active_streams = Gauge(
    "active_streams", "Open server-sent event streams (REST)", multiprocess_mode="livesum"
)
active_subscriptions = Gauge(
    "active_subscriptions", "Open GraphQL subscriptions", multiprocess_mode="livesum"
)
# Several processes: each writes its pool's use every few seconds (`refreshing_pool`).
_pool_gauge = (
    Gauge("db_pool_in_use", "Database connections in use", multiprocess_mode="livesum")
    if MULTIPROCESS
    else None
)
_OUTCOMES_OK = frozenset({"ok", "cancelled"})


class PrometheusObserver:
    """The service layer's observer (db.ports.Observer), counting into Prometheus."""

    def reply_finished(self, report: ReplyReport) -> None:
        labels = (report.provider, report.config_id)
        model_replies.labels(*labels, report.outcome).inc()
        if report.outcome not in _OUTCOMES_OK:
            model_errors.labels(*labels, report.outcome).inc()
            return
        model_reply_seconds.labels(*labels).observe(report.seconds)
        if report.first_token_seconds is not None:
            model_first_token_seconds.labels(*labels).observe(report.first_token_seconds)
        if report.prompt_tokens:
            model_tokens.labels(*labels, "prompt").inc(report.prompt_tokens)
        if report.completion_tokens:
            model_tokens.labels(*labels, "completion").inc(report.completion_tokens)

    def log_written(self, *, level: str) -> None:
        log_entries.labels(level).inc()


class RequestCounts:
    """Counts answered requests; children are looked up once per label set (cheap)."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}
        self._operations: set[str] = set()

    def graphql_route(self, operation: str | None) -> str:
        """`graphql:<operation>`, bounded: long names cut, new names past the limit 'other'."""
        if not operation:
            return "graphql:anonymous"
        name = operation[:MAX_OPERATION_CHARS]
        if name not in self._operations:
            if len(self._operations) >= MAX_OPERATIONS:
                return "graphql:other"
            self._operations.add(name)
        return f"graphql:{name}"

    def observe(self, *, route: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._counters[route, method, status] = http_requests.labels(
                route, method, str(status)
            )
        timer = self._timers.get((route, method))
        if timer is None:
            timer = self._timers[route, method] = http_duration.labels(route, method)
        counter.inc()
        timer.observe(seconds)


def _pool_in_use() -> int | None:
    """Connections of this process's asyncpg pool in use (None: no pool, e.g. SQLite)."""
    try:
        pool = getattr(connections.get("default"), "_pool", None)
    except Exception:
        return None
    if pool is None or not hasattr(pool, "get_idle_size"):
        return None
    return int(pool.get_size() - pool.get_idle_size())


class PoolCollector(Collector):
    """One process: the pool's use, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("db_pool_in_use", "Database connections in use")
        in_use = _pool_in_use()
        if in_use is not None:
            family.add_metric([], in_use)
        yield family


if not MULTIPROCESS:
    REGISTRY.register(PoolCollector())


async def refreshing_pool() -> None:
    """Several processes: write this process's pool use every few seconds, until cancelled."""
    if _pool_gauge is None:
        return
    while True:
        in_use = _pool_in_use()
        if in_use is not None:
            _pool_gauge.set(in_use)
        await asyncio.sleep(POOL_REFRESH_SECONDS)


def process_ended() -> None:
    """Several processes: this one stops; its live gauges no longer count."""
    if MULTIPROCESS:
        with suppress(Exception):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _exposition() -> bytes:
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    in_use = _pool_in_use()
    if in_use is not None and _pool_gauge is not None:
        _pool_gauge.set(in_use)  # this process's value, fresh
    return generate_latest(registry)


def endpoint(*, token: str) -> Any:
    """GET /metrics; with `token`, only for `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {"code": 401, "message": "metrics need the metrics token", "data": None},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        # Reading many files (several processes) blocks: off the event loop.
        body = await asyncio.to_thread(_exposition) if MULTIPROCESS else _exposition()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
