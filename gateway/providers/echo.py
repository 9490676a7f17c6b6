"""The built-in `echo` model: deterministic, offline, streams word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from db.errors import Invalid
from db.ports import ChatTurn, ModelReply, ModelSpec, ReplyDelta, Usage
from db.services.history import estimate_tokens

LABELS = {
    "echo": True,
    "note": "built-in echo model: repeats the last user message; no AI model was asked",
}
_WORDS = re.compile(r"\s*\S+\s*|\s+")


class EchoClient:
    def __init__(self, spec: ModelSpec) -> None:
        self.prefix: str = spec.parameters.get("prefix", "Echo: ")
        self.delay = float(spec.parameters.get("chunk_delay_ms", 0)) / 1000

    def _reply(self, turns: Sequence[ChatTurn]) -> ModelReply:
        question = next((turn.content for turn in reversed(turns) if turn.role == "user"), "")
        text = self.prefix + question
        usage = Usage(
            prompt_tokens=sum(estimate_tokens(turn.content) for turn in turns),
            completion_tokens=estimate_tokens(text),
        )
        # input_messages shows what the model was given, so the history is checkable.
        labels = {**LABELS, "input_messages": len(turns)}
        return ModelReply(content=text, finish_reason="stop", usage=usage, labels=labels)

    async def complete(self, turns: Sequence[ChatTurn]) -> ModelReply:
        reply = self._reply(turns)
        if self.delay:
            await asyncio.sleep(self.delay * len(_WORDS.findall(reply.content)))
        return reply

    async def stream(self, turns: Sequence[ChatTurn]) -> AsyncGenerator[ReplyDelta | ModelReply]:
        reply = self._reply(turns)
        for piece in _WORDS.findall(reply.content):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield ReplyDelta(piece)
        yield reply

    async def aclose(self) -> None:
        return None


class EchoProvider:
    name = "echo"

    def validate(self, spec: ModelSpec) -> None:
        # Other parameters (temperature, ...) are accepted and ignored, as a stand-in should.
        prefix: Any = spec.parameters.get("prefix", "")
        if not isinstance(prefix, str):
            raise Invalid("prefix must be a string", field="parameters")
        delay: Any = spec.parameters.get("chunk_delay_ms", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 5000:
            raise Invalid("chunk_delay_ms must be a number from 0 to 5000", field="parameters")

    def build(self, spec: ModelSpec) -> EchoClient:
        return EchoClient(spec)
