"""An identity provider for tests: signing keys made in the test, a JWKS on loopback.

`IdentityProvider` serves `GET /jwks` from a real aiohttp server, counts the requests and
can be told to fail, to send the key set in small pieces, or to send far too much;
`Signer` holds a private key (RSA 2048 or EC P-256) and signs tokens.
`forged` builds the tokens no library would sign: `alg: none`, and HS256 keyed with the
public key (the algorithm confusion attack).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "ai-chat-gateway"


@dataclass(frozen=True)
class Signer:
    """A signing key: its private half signs, its public half is published."""

    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str
    kid: str

    @classmethod
    def rsa(cls, kid: str) -> Signer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)

    @classmethod
    def ec(cls, kid: str) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)

    def jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            found = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            found = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**found, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(self, *, kid: str | None = "", **claims: Any) -> str:
        """A token signed by this key; `kid=None` leaves the key id out."""
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(claims_of(**claims), self.private_key, self.algorithm, headers=headers)


def claims_of(**claims: Any) -> dict[str, Any]:
    """A valid token's claims (for five minutes), with `claims` changed; None removes one."""
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "subject-1", "iat": now, "exp": now + 300}
    merged = {**base, **claims}
    return {name: value for name, value in merged.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], *, hmac_secret: bytes | None) -> str:
    """A compact JWS with this header, HMAC-SHA256 signed with `hmac_secret` (None: unsigned)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class IdentityProvider:
    """A JWKS endpoint on loopback publishing `signers`; `status` other than 200 fails it,
    `delay` (seconds) holds each answer back. `piece` > 0 sends the key set chunked in
    pieces of that many bytes, `pause` seconds apart; `padding` bytes of blanks after it
    make the document that much larger (`served` counts the bytes actually sent)."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.requests = 0
        self.status = 200
        self.delay = 0.0
        self.piece = 0
        self.pause = 0.0
        self.padding = 0
        self.served = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> IdentityProvider:
        app = web.Application()
        app.router.add_get("/jwks", self._jwks)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/jwks"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": "unavailable"}, status=self.status)
        document = {"keys": [signer.jwk() for signer in self.signers]}
        if not self.piece:
            return web.json_response(document)
        body = json.dumps(document).encode() + b" " * self.padding
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()  # no Content-Length: the reader cannot know
        await response.prepare(request)
        try:
            for start in range(0, len(body), self.piece):
                piece = body[start : start + self.piece]
                await response.write(piece)
                self.served += len(piece)
                await asyncio.sleep(self.pause)
            await response.write_eof()
        except ConnectionError:
            pass  # the client gave up reading: what was served is counted
        return response
