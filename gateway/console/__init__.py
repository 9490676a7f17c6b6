"""The web console: a chat page at `/`, an admin page at `/admin`, their files at `/console/`.

Plain static files shipped in the package (no build step): HTML pages, ES modules, one
stylesheet, and third-party files vendored by `scripts/vendor-console-assets` with their
licences. The pages talk to the gateway only through its GraphQL API (and REST's export
download), with the caller's own credential, like any other web client.

The pages get a strict Content-Security-Policy of their own: scripts, styles and requests
from this origin only, nothing inline, so a reply's text can never run as code.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.settings import Settings

HERE = Path(__file__).parent
PAGES = HERE / "pages"
STATIC = HERE / "static"
PREFIX = "/console"
# 'self' covers this origin's WebSocket too (CSP Level 3): subscriptions stream over it.
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
# The files are not fingerprinted: a browser may keep them, but asks (ETag) before use.
REVALIDATE = "no-cache"


class ConsoleFiles(StaticFiles):
    """The console's static files, revalidated on every use."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = REVALIDATE
        return response


def _page(name: str) -> Route:
    path = PAGES / name

    async def endpoint(request: Request) -> Response:
        return FileResponse(
            path,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": REVALIDATE},
        )

    return Route("/" if name == "index.html" else f"/{path.stem}", endpoint, methods=["GET"])


def routes(settings: Settings) -> list[BaseRoute]:
    """The pages (CONSOLE_ENABLED), what they need to know of this server's settings, and
    the files under /console/ (GraphiQL's too: served when either is enabled)."""
    features = {"jwtSignIn": settings.jwt_enabled, "graphiql": settings.graphiql}

    async def console_settings(request: Request) -> JSONResponse:
        # Public: it tells a page which sign-in to offer before anyone has signed in.
        return JSONResponse(features, headers={"Cache-Control": REVALIDATE})

    pages: list[BaseRoute] = [
        _page("index.html"),
        _page("admin.html"),
        Route(f"{PREFIX}/settings.json", console_settings, methods=["GET"]),
    ]
    files = Mount(PREFIX, app=ConsoleFiles(directory=STATIC), name="console")
    return [*pages, files] if settings.console_enabled else [files]
