"""Bearer JWTs from an external identity provider: verified here, the user found in db.

PyJWT does the cryptography. Only RS256 and ES256 are accepted, each only with a key of
its own kind (a token cannot pick HS256 and use a public key as its secret); `exp` is
required, `nbf` and `iat` are enforced, `iss` and `aud` must be the configured ones, all
with a small leeway for clock skew. Keys come from a static PEM or from the provider's
JWKS, fetched with aiohttp, kept, and fetched again when a token names a key id not seen
yet (key rotation) or the keys are older than their lifetime, at most once per
JWT_JWKS_REFRESH_SECONDS whatever the tokens say, so a flood of made-up key ids cannot
turn into a flood of requests to the provider. A token is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from db.errors import Unauthenticated
from db.identity import Caller
from db.services import auth_failures, identities

if TYPE_CHECKING:
    from gateway.settings import Settings

logger = logging.getLogger(__name__)

# The only signature algorithms accepted: asymmetric, and each tied to one kind of key.
ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048
# A JWKS larger than this is not a key set (and is not read whole).
MAX_JWKS_BYTES = 256 * 1024
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def load_public_key(pem: str) -> tuple[PublicKey, str]:
    """A PEM public key and the one algorithm it verifies; ValueError names the problem."""
    text = pem.replace("\\n", "\n") if "\n" not in pem else pem  # one-line env values
    try:
        key = load_pem_public_key(text.strip().encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a PEM public key ({exc})") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"an RSA key needs at least {MIN_RSA_BITS} bits")
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, "ES256"
    raise ValueError("must be an RSA key (RS256) or an EC P-256 key (ES256)")


def _refuse(reason: str, message: str, *, source: str) -> NoReturn:
    """Count the failure (nothing is written now) and answer it."""
    auth_failures.note(reason=reason, source=source)
    raise Unauthenticated(message)


class KeysUnavailable(Exception):
    """The provider's key set could not be fetched and none is known."""


@dataclass
class JwksKeys:
    """The provider's signing keys, fetched from `url` and kept (see the module's note)."""

    url: str
    timeout: float
    refresh_seconds: float
    max_age: float
    # Where "now" comes from (seconds, monotonic): tests move a fake clock instead of waiting.
    clock: Callable[[], float] = time.monotonic
    _by_kid: dict[str, jwt.PyJWK] = field(default_factory=dict, init=False)
    _all: list[jwt.PyJWK] = field(default_factory=list, init=False)
    # `clock()` at the last fetch that worked, and at the last attempt.
    _fetched_at: float = field(default=-math.inf, init=False)
    _tried_at: float = field(default=-math.inf, init=False)
    _lock: asyncio.Lock | None = field(default=None, init=False)
    _lock_loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)

    async def key_for(self, kid: str | None, algorithm: str) -> jwt.PyJWK | None:
        """The key a token names, fetching the set again if allowed; None if unknown."""
        key = self._pick(kid, algorithm)
        now = self.clock()
        if key is not None and now - self._fetched_at < self.max_age:
            return key
        if now - self._tried_at >= self.refresh_seconds:
            tried_before = self._tried_at
            async with self._guard():
                if self._tried_at == tried_before:  # nobody fetched while we waited
                    await self._fetch()
            key = self._pick(kid, algorithm)
        if key is None and self._fetched_at == -math.inf:
            raise KeysUnavailable
        return key  # a stale key still verifies while the provider is away

    def _pick(self, kid: str | None, algorithm: str) -> jwt.PyJWK | None:
        if kid is not None:
            key = self._by_kid.get(kid)
            return key if key is not None and key.algorithm_name == algorithm else None
        # No key id: only unambiguous with a single key of the token's algorithm.
        fitting = [key for key in self._all if key.algorithm_name == algorithm]
        return fitting[0] if len(fitting) == 1 else None

    def _guard(self) -> asyncio.Lock:
        # One lock per event loop (tests run several loops in one process).
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _fetch(self) -> None:
        self._tried_at = self.clock()
        try:
            document = await self._download()
            keys = _usable_keys(document)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # A warning, not an error: the provider is away, nothing is broken here.
            logger.warning("could not fetch the identity provider's keys: %s", exc or type(exc))
            return
        self._all = keys
        self._by_kid = {key.key_id: key for key in keys if key.key_id is not None}
        self._fetched_at = self.clock()

    async def _download(self) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(
                self.url, allow_redirects=False, headers={"Accept": "application/json"}
            ) as response,
        ):
            if response.status != 200:
                raise ValueError(f"{self.url} answered HTTP {response.status}")
            too_big = ValueError(f"{self.url} sent more than {MAX_JWKS_BYTES} bytes")
            # A declared length says so before anything is read.
            if (response.content_length or 0) > MAX_JWKS_BYTES:
                raise too_big
            # `content.read(n)` returns what happens to be buffered, not n bytes: a body
            # arriving in pieces is gathered here, and given up on as soon as it is too big.
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise too_big
            return json.loads(body)


def _usable_keys(document: Any) -> list[jwt.PyJWK]:
    """The signing keys of a JWKS document this gateway accepts; others are skipped."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS document has no 'keys' list")
    keys = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a kind of key this gateway does not take (or cannot read)
        if key.algorithm_name in ALGORITHMS and _fits(key.key, key.algorithm_name):
            keys.append(key)
    return keys


def _fits(key: Any, algorithm: str) -> bool:
    if algorithm == "RS256":
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


# PyJWT's failures, most specific first, as (reason counted, message answered).
_FAILURES: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "token expired", "token has expired"),
    (jwt.ImmatureSignatureError, "token not yet valid", "token is not valid yet"),
    (jwt.InvalidIssuerError, "token from another issuer", "token has the wrong issuer"),
    (jwt.InvalidAudienceError, "token for another audience", "token has the wrong audience"),
    (jwt.MissingRequiredClaimError, "token lacks a claim", "token lacks a required claim"),
    (jwt.InvalidSignatureError, "token signature invalid", "token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm refused", "token algorithm is not allowed"),
)


@dataclass(frozen=True)
class JwtVerifier:
    """Verifies a provider's tokens and signs their subjects in (db.services.identities)."""

    issuer: str
    audience: str
    leeway: float
    name_claim: str
    role_claim: str
    jwks: JwksKeys | None = None
    static_key: tuple[PublicKey, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """The verifier the settings describe; None when JWT sign-in is off."""
        if not settings.jwt_enabled:
            return None
        jwks = None
        if settings.jwt_jwks_url:
            jwks = JwksKeys(
                url=settings.jwt_jwks_url,
                timeout=settings.jwt_jwks_timeout,
                refresh_seconds=settings.jwt_jwks_refresh_seconds,
                max_age=settings.jwt_jwks_cache_seconds,
            )
        static = load_public_key(settings.jwt_public_key) if settings.jwt_public_key else None
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            name_claim=settings.jwt_name_claim,
            role_claim=settings.jwt_role_claim,
            jwks=jwks,
            static_key=static,
        )

    async def caller(self, token: str, *, source: str) -> Caller:
        """The caller `token` signs in; raises `Unauthenticated` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            _refuse("malformed token", "token is not a well-formed JWT", source=source)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            _refuse(
                "token algorithm refused",
                f"token algorithm must be one of {', '.join(ALGORITHMS)}",
                source=source,
            )
        if kid is not None and not isinstance(kid, str):
            _refuse("malformed token", "token is not a well-formed JWT", source=source)
        key = await self._key(kid, algorithm, source=source)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            for kind, reason, message in _FAILURES:
                if isinstance(exc, kind):
                    _refuse(reason, message, source=source)
            _refuse("invalid token", "token is invalid", source=source)
        return await identities.sign_in(
            issuer=claims["iss"],
            subject=claims["sub"],
            name=claims.get(self.name_claim),
            role=claims.get(self.role_claim),
            source=source,
        )

    async def _key(self, kid: str | None, algorithm: str, *, source: str) -> Any:
        if self.static_key is not None:
            key, own_algorithm = self.static_key
            if algorithm != own_algorithm:
                _refuse(
                    "token algorithm refused",
                    f"token algorithm must be {own_algorithm}",
                    source=source,
                )
            return key
        assert self.jwks is not None
        try:
            found = await self.jwks.key_for(kid, algorithm)
        except KeysUnavailable:
            _refuse(
                "identity provider keys unavailable",
                "cannot verify the token now: the identity provider's keys are unavailable",
                source=source,
            )
        if found is None:
            _refuse(
                "token signed by an unknown key", "token signed by an unknown key", source=source
            )
        return found
