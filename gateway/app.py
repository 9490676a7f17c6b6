"""create_app(): routes, middleware, the exception table and the lifespan."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp
from tortoise.contrib.starlette import RegisterTortoise

from db import observing
from db.events import InProcessBroker
from db.pg_events import PostgresBroker
from db.ports import EventBroker, Limits, Runtime
from db.services import auth_failures, log_retention, logs, reply_runs, users
from gateway import auth, console, metrics, processes, rate_limiting, rest, shutdown
from gateway.errors import EXCEPTION_HANDLERS, InternalErrors
from gateway.fast_reads import FastReads
from gateway.graphql import PATH as GRAPHQL_PATH
from gateway.graphql import GraphQLEndpoint
from gateway.health import Readiness
from gateway.log_config import configure_logging
from gateway.middleware import BodyReader, RequestBody
from gateway.observe import Observations, RequestObserver, count_subscriptions
from gateway.providers import ProviderRegistry, default_registry
from gateway.security_headers import SecurityHeaders
from gateway.settings import Settings, get_settings
from schema import GraphQLLimits

logger = logging.getLogger(__name__)
LOG_FLUSH_SECONDS = 5.0


async def health(request: Request) -> JSONResponse:
    """Liveness: the process answers (no authentication, no database)."""
    return JSONResponse({"status": "ok"})


class Gateway(Starlette):
    """Starlette, with the compiled reads' lane (gateway.fast_reads), when there is one, in
    front of its whole middleware stack, Starlette's own error middleware included."""

    def __init__(self, *, lane: Callable[[ASGIApp], ASGIApp] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lane = lane

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.lane is None else self.lane(stack)


def create_app(
    settings: Settings | None = None,
    *,
    models: ProviderRegistry | None = None,
    events: EventBroker | None = None,
) -> Starlette:
    """The ASGI application; `models` and `events` let tests plug in their own ports."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, log_format=settings.log_format)
    registry = models or default_registry(settings)
    if events is None:
        # On PostgreSQL every process shares events; on SQLite there is only one process.
        events = (
            PostgresBroker(settings.database_url, timeout=settings.database_timeout)
            if settings.dialect == "postgres"
            else InProcessBroker()
        )
    runtime = Runtime(
        models=registry,
        events=events,
        limits=settings.values_for(Limits),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.prepare_storage()
        users.remember_callers(settings.key_cache_seconds)
        auth.configure(settings)
        shutdown.note_signals(
            grace_seconds=settings.shutdown_grace_seconds, before_deadline=reply_runs.stop_all
        )
        async with (
            RegisterTortoise(app, config=settings.tortoise, _enable_global_fallback=True),
            auth_failures.reporting(every=settings.auth_failure_log_interval),
            processes.shared(runtime),
            rate_limiting.limiting(settings),
            log_retention.pruning(
                retention=log_retention.Retention(
                    days=settings.log_retention_days, max_rows=settings.log_max_rows
                ),
                every=settings.log_prune_interval,
            ),
        ):
            pool_use = asyncio.create_task(metrics.refreshing_pool())
            try:
                yield
            finally:
                pool_use.cancel()
                metrics.process_ended()
                # uvicorn has stopped accepting and waited for open requests and streams;
                # turns that run on without a listener get what is left of the grace.
                stopped = await reply_runs.drain(
                    shutdown.remaining(settings.shutdown_grace_seconds)
                )
                if stopped:
                    logger.warning("stopped %d running replies at shutdown", stopped)
                await registry.aclose()
                # Entries still being written; a database that is away cannot take them.
                with suppress(TimeoutError):
                    async with asyncio.timeout(LOG_FLUSH_SECONDS):
                        await logs.flush()

    graphql_limits = settings.values_for(GraphQLLimits, prefix="graphql_")
    if settings.production and graphql_limits.introspection:
        # Production: introspection for admins only (GRAPHQL_INTROSPECTION=false: no one).
        graphql_limits = dataclasses.replace(graphql_limits, introspection="admins")
    graphql = GraphQLEndpoint(
        runtime=runtime,
        limits=graphql_limits,
        ide=settings.graphiql,
        allowed_origins=settings.cors_origins,
        max_subscriptions_per_connection=settings.graphql_max_subscriptions,
        ws_send_timeout=settings.graphql_ws_send_timeout,
        fast_path=settings.graphql_fast_path and settings.dialect == "postgres",
        plan_cache_size=settings.graphql_plan_cache_size,
    )
    routes: list[BaseRoute] = [
        # First: the router tries routes in order, and GraphQL reads are the busiest.
        Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
        WebSocketRoute(GRAPHQL_PATH, graphql),
        *rest.routes(),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", Readiness().endpoint, methods=["GET"]),
    ]
    if settings.console_enabled or settings.graphiql:  # GraphiQL's files are the console's
        routes.extend(console.routes(settings))
    if settings.metrics_enabled:
        observing.install(metrics.PrometheusObserver())
        count_subscriptions(graphql, max_tokens=settings.graphql_max_tokens)
        routes.append(Route("/metrics", metrics.endpoint(token=settings.metrics_token)))
    observations = Observations(access_log=settings.access_log, metrics=settings.metrics_enabled)
    body = BodyReader(max_bytes=settings.max_body_bytes, timeout=settings.request_body_timeout)
    lane: Callable[[ASGIApp], ASGIApp] | None = None
    if graphql.compiled is not None:
        # In front of all the middleware: compiled reads answered with the same id,
        # headers, body limits and record as the middleware gives (gateway.fast_reads).
        lane = functools.partial(
            FastReads,
            reads=graphql.compiled,
            observations=observations,
            body=body,
            max_json_depth=runtime.limits.max_json_depth,
            cors=bool(settings.cors_origins),
        )
    middleware = [
        # Outermost: every answer, refusals included, carries the request id.
        Middleware(
            RequestObserver,
            observations=observations,
            unobserved=("/healthz", "/readyz", "/metrics"),
        ),
        # Outermost: every answer gets the headers, refusals and CORS preflights included.
        Middleware(SecurityHeaders),
        Middleware(RequestBody, reader=body),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                # Not on the CORS safe list: a browser app could not read them otherwise.
                expose_headers=[
                    "Retry-After",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                    "Content-Disposition",  # an export's file name
                ],
            )
        )
    # Innermost: an internal error's 500 keeps the connection open and gets CORS headers.
    middleware.append(Middleware(InternalErrors))
    app = Gateway(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        lane=lane,
    )
    # A trailing slash is another (unknown) route, answered with the 404 envelope, rather
    # than a redirect legacy clients may not follow.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.models = registry  # the providers it knows name the OpenAPI document's enum
    return app
