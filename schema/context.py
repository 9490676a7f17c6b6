"""The typed GraphQL context: the request, the service ports, per-operation state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import strawberry
from strawberry.extensions import SchemaExtension

from db.identity import Caller
from db.ports import Runtime
from schema.loaders import Loaders


@dataclass
class OperationState:
    """What lives exactly as long as one operation: loaders and the authenticated caller,
    or why there is none."""

    loaders: Loaders | None = None
    caller: Caller | None = None
    # The refusal of the first authentication (UNAUTHENTICATED, RATE_LIMITED, ...): every
    # root field asks for the caller, and asking again would count one failed sign-in, or
    # one more request over the limit, per field of a single operation.
    refusal: Exception | None = None
    # Root fields resolve concurrently: the first authenticates, the others wait for it.
    authenticating: asyncio.Lock = field(default_factory=asyncio.Lock)


_operation: ContextVar[OperationState | None] = ContextVar("graphql_operation", default=None)


@dataclass
class Context:
    """One per HTTP request or WebSocket connection; per-operation state is kept apart."""

    runtime: Runtime
    # Supplied by the transport, which alone knows where credentials are in its requests.
    authenticate: Callable[[Context], Awaitable[Caller]]
    request: Any = None
    # graphql-ws / graphql-transport-ws `connection_init` payload (strawberry sets it).
    connection_params: dict[str, Any] | None = None

    @property
    def operation(self) -> OperationState:
        state = _operation.get()
        if state is None:
            state = OperationState()
            _operation.set(state)
        return state

    @property
    def loaders(self) -> Loaders:
        state = self.operation
        if state.loaders is None:
            state.loaders = Loaders(self.caller)
        return state.loaders

    def renew_loaders(self) -> None:
        """Forget cached rows, e.g. before each event of a long-lived subscription."""
        self.operation.loaders = Loaders(self.caller)

    async def caller(self) -> Caller:
        """The authenticated caller of this operation (UNAUTHENTICATED otherwise); one
        authentication per operation, whether it succeeds or is refused."""
        state = self.operation
        if state.caller is None:
            async with state.authenticating:
                if state.refusal is not None:
                    raise state.refusal
                if state.caller is None:
                    try:
                        state.caller = await self.authenticate(self)
                    except Exception as exc:
                        state.refusal = exc
                        raise
        return state.caller


Info: TypeAlias = strawberry.Info[Context, None]


class OperationScope(SchemaExtension):
    """Fresh loaders and a fresh authentication for every operation.

    A WebSocket connection shares one context across its operations; keeping the state
    in a context variable set per operation means no operation sees another's cache
    and a key revoked mid-connection stops working for the next operation.
    """

    def on_operation(self) -> Iterator[None]:
        token = _operation.set(OperationState())
        try:
            yield
        finally:
            try:
                _operation.reset(token)
            except ValueError:  # finished in another context: just drop the state
                _operation.set(None)
