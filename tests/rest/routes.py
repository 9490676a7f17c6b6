"""The routes of /api/v1 as data, so a rule can be checked on every route at once.

The stream of a running reply (`GET .../messages/{message_id}/stream`) needs a reply to
exist; its rules are shown in tests/gateway/e2e/test_streaming_rest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.rest.expect import url


@dataclass(frozen=True)
class Target:
    """What a call acts on: a session, a model config, and the user_id a body names."""

    session_id: str
    config_id: str
    user_id: str


@dataclass(frozen=True)
class RouteCall:
    method: str
    path: str
    admin_only: bool = False
    names_user: bool = False  # the body carries a user_id
    on_session: bool = False  # the path names a session

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def body(self, target: Target) -> dict[str, Any] | None:
        if self.method in ("GET", "DELETE") or self.path.endswith("/cancel"):
            return None
        if self.method == "PATCH":
            return {"title": "renamed"}
        if self.path == "/model-configs/{config_id}":
            return {"model_version": "2"}
        if self.path == "/model-configs/{config_id}/rollback":
            return {"version": 1}
        body: dict[str, Any] = {"user_id": target.user_id}
        if self.path.endswith("/messages"):
            body["message"] = "hello"
        return body

    async def call(
        self, client: httpx.AsyncClient, target: Target, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        path = self.path.format(session_id=target.session_id, config_id=target.config_id)
        return await client.request(
            self.method, url(path), json=self.body(target), headers=headers or {}
        )


ROUTES = [
    RouteCall("POST", "/sessions", names_user=True),
    RouteCall("GET", "/sessions"),
    RouteCall("PATCH", "/sessions/{session_id}", on_session=True),
    RouteCall("DELETE", "/sessions/{session_id}", on_session=True),
    RouteCall("GET", "/sessions/{session_id}/messages", on_session=True),
    RouteCall("POST", "/sessions/{session_id}/messages", names_user=True, on_session=True),
    RouteCall("POST", "/sessions/{session_id}/cancel", on_session=True),
    RouteCall("GET", "/model-configs"),
    RouteCall("PUT", "/model-configs/{config_id}", admin_only=True),
    RouteCall("GET", "/model-configs/{config_id}/versions", admin_only=True),
    RouteCall("POST", "/model-configs/{config_id}/rollback", admin_only=True),
    RouteCall("GET", "/logs", admin_only=True),
    RouteCall("GET", "/usage"),
]


def each_route(
    *, admin_only: bool | None = None, names_user: bool = False, on_session: bool = False
) -> pytest.MarkDecorator:
    """Parametrize `route` over the routes with these traits (all routes by default)."""
    chosen = [
        route
        for route in ROUTES
        if admin_only in (None, route.admin_only)
        and (route.names_user or not names_user)
        and (route.on_session or not on_session)
    ]
    return pytest.mark.parametrize("route", chosen, ids=[route.id for route in chosen])
