"""A provider that fails on purpose, for the failure and retry paths."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from db.ports import ChatTurn, ModelError, ModelReply, ModelSpec, ReplyDelta
from gateway.providers.echo import EchoClient


class FlakyClient(EchoClient):
    def __init__(self, spec: ModelSpec, provider: FlakyProvider) -> None:
        super().__init__(spec)
        self.provider = provider

    def _maybe_fail(self) -> None:
        self.provider.calls += 1
        if self.provider.failures_left > 0:
            self.provider.failures_left -= 1
            raise ModelError("upstream answered 503", status=503)

    async def complete(self, turns: Sequence[ChatTurn]) -> ModelReply:
        self._maybe_fail()
        return await super().complete(turns)

    async def stream(self, turns: Sequence[ChatTurn]) -> AsyncGenerator[ReplyDelta | ModelReply]:
        self._maybe_fail()
        async for item in super().stream(turns):
            yield item


class FlakyProvider:
    """Echoes like `echo`, but fails the next `fail_next(n)` calls."""

    name = "flaky"

    def __init__(self) -> None:
        self.failures_left = 0
        self.calls = 0

    def fail_next(self, times: int = 1) -> None:
        self.failures_left = times

    def validate(self, spec: ModelSpec) -> None:
        return None

    def build(self, spec: ModelSpec) -> FlakyClient:
        return FlakyClient(spec, self)
