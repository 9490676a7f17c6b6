"""Bearer API keys -> `Caller`: the only place credentials are read from a request."""

from __future__ import annotations

from collections.abc import Mapping

from db.identity import Caller
from db.services import users


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(headers: Mapping[str, str], *, source: str) -> Caller:
    """The caller named by the request's Authorization header; raises `Unauthenticated`."""
    return await users.authenticate(token=bearer_token(headers.get("authorization")), source=source)
