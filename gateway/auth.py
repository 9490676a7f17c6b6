"""Bearer credentials -> `Caller`: the only place credentials are read from a request.

A bearer token is an API key (`cgw_...`), or, when JWT sign-in is configured, a JWT from
the identity provider (three dot-separated parts), verified by `gateway.jwt_auth`.
"""

from __future__ import annotations

from collections.abc import Mapping

from db.identity import Caller
from db.services import identities, rate_limits, users
from gateway.jwt_auth import JwtVerifier
from gateway.request_info import note_caller
from gateway.settings import Settings

# The process's JWT verifier (None: JWT sign-in is off), set as the app starts.
_jwt: JwtVerifier | None = None


def configure(settings: Settings) -> None:
    """Sign-in as `settings` say: JWTs accepted or not, and how long callers are kept."""
    global _jwt
    _jwt = JwtVerifier.from_settings(settings)
    identities.remember_callers(settings.key_cache_seconds)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _is_jwt(token: str) -> bool:
    # API keys never hold a dot; a JWS in compact form always holds exactly two.
    return not token.startswith(users.KEY_SCHEME) and token.count(".") == 2


async def authenticate(headers: Mapping[str, str], *, source: str) -> Caller:
    """The caller named by the request's Authorization header; raises `Unauthenticated`."""
    token = bearer_token(headers.get("authorization"))
    if token is not None and _jwt is not None and _is_jwt(token):
        caller = await _jwt.caller(token, source=source)
    else:
        caller = await users.authenticate(token=token, source=source)
    note_caller(caller.user_id)  # the access line's user, rate limited or not
    # Every door authenticates each request (each WebSocket operation) here, once:
    # the one place requests are counted against RATE_LIMIT_PER_MINUTE (`RateLimited`).
    await rate_limits.admit_request(caller)
    return caller
