"""The /graphql door's fast lane: read queries answered by one compiled statement, before
the rest of the app runs.

In front of the app's whole middleware stack (gateway.app.Gateway). Only a plain POST of a
JSON body with credentials is taken (a query, maybe variables and an operation name, a
declared length within the body limit, no Origin when CORS is on); anything else goes on
untouched. For what it takes, the lane does what the middleware would do, with their own
parts, and no more: the request's id and record (gateway.observe: `Observation`,
`Observations`), the body's limits (gateway.middleware: `BodyReader`), the security headers
(gateway.security_headers: `secured`); then it authenticates the caller, binds the plan
and sends the statement's text as the body. Skipping Starlette's router, its exception
layers and the per-message wrappers of each middleware is what makes this path cheap: about
a quarter of a compiled read's CPU went there.

Whatever the lane does not answer (a document it does not compile, an argument the
services refuse, an answer holding MARK, the database away, anything failing) goes on to
the app with the body replayed, the same observation (RequestObserver adopts it: one id,
one record) and the outcome of authentication in the scope, so that a request is never
authenticated (nor a failure counted) twice. Strawberry then answers it as it always
does.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.errors import Invalid, RateLimited, Unauthenticated
from gateway import json_input
from gateway.auth import authenticate
from gateway.graphql import CALLER_KEY, PATH
from gateway.middleware import BodyReader, BodyRefused, ClientGone, replaying
from gateway.observe import OPENED_KEY, Observation, Observations
from gateway.request_info import note_operation
from gateway.security_headers import secured
from schema import CompiledReads

logger = logging.getLogger(__name__)

_MEMBERS = frozenset({"query", "variables", "operationName"})
_JSON = b"application/json"
# A compiled answer's head, but for its length and request id: prepared once.
_HEADERS = tuple(secured([(b"content-type", _JSON)]))


class FastReads:
    """Answer the read queries `reads` compiles; hand everything else to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: CompiledReads,
        observations: Observations,
        body: BodyReader,
        max_json_depth: int,
        cors: bool,
    ) -> None:
        self.app = app
        self.reads = reads
        self.observations = observations
        self.body = body
        self.max_json_depth = max_json_depth
        self.cors = cors  # CORS headers are CORSMiddleware's: requests with an Origin go on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # As the stack reads them: the first Authorization and Content-Type (Starlette's
        # Headers), the last Content-Length (RequestBody).
        authorization = declared = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"content-length":
                declared = value
            elif name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name == b"origin" and self.cors:
                content_type = None
                break
        json_body = (
            content_type is not None and content_type.split(b";")[0].strip().lower() == _JSON
        )
        if (
            authorization is None  # Strawberry answers (UNAUTHENTICATED, or no one needed)
            or not json_body
            or declared is None
            or not declared.isdigit()
            or int(declared) > self.body.max_bytes
        ):
            await self.app(scope, receive, send)
            return
        observation = Observation(scope["headers"])
        try:
            body = await self.body.read(declared, receive)
        except BodyRefused as refused:
            try:
                await self.body.refuse(scope, receive, _with_headers(send, observation), refused)
            finally:
                self._record(observation, refused.status)
            return
        except ClientGone:
            logger.info("client went away while sending POST %s", PATH)
            # Recorded as RequestObserver records a request that got no answer.
            self._record(observation, 500)
            return
        text = await self._answer(scope, body, authorization.decode("latin-1"))
        if text is None:
            scope[OPENED_KEY] = observation  # RequestObserver records and closes it
            await self.app(scope, replaying(body, receive), send)
            return
        answer = text.encode()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        *_HEADERS,
                        (b"content-length", str(len(answer)).encode()),
                        observation.header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        finally:
            self._record(observation, 200)

    async def _answer(self, scope: Scope, body: bytes, authorization: str) -> str | None:
        """The compiled answer's text, or None for Strawberry to answer the request."""
        try:
            document = json_input.decode(body, max_depth=self.max_json_depth)
        except Invalid:
            return None
        note_operation(document)
        if not isinstance(document, dict) or not document.keys() <= _MEMBERS:
            return None
        query, variables, operation_name = (
            document.get("query"),
            document.get("variables"),
            document.get("operationName"),
        )
        if not isinstance(query, str) or not isinstance(operation_name, str | None):
            return None
        if not isinstance(variables, dict | None):
            return None
        try:
            caller = await authenticate({"authorization": authorization}, source="graphql")
        except (Unauthenticated, RateLimited) as exc:  # counted once: Strawberry answers it
            scope[CALLER_KEY] = exc
            return None
        except Exception:
            logger.debug("left to strawberry: authentication failed", exc_info=True)
            return None
        scope[CALLER_KEY] = caller
        try:
            prepared = self.reads.prepare(query, operation_name, variables or {})
            return None if prepared is None else await self.reads.answer(prepared, caller)
        except Exception:
            logger.debug("left to strawberry: the compiled path failed", exc_info=True)
            return None

    def _record(self, observation: Observation, status: int) -> None:
        try:
            self.observations.record(
                method="POST",
                template=PATH,
                info=observation.info,
                status=status,
                seconds=time.perf_counter() - observation.started,
            )
        finally:
            observation.close()


def _with_headers(send: Send, observation: Observation) -> Send:
    """`send`, adding what SecurityHeaders and RequestObserver add to a refusal's head."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*secured(message.get("headers", ())), observation.header]
            message = {**message, "headers": headers}
        await send(message)

    return sending
