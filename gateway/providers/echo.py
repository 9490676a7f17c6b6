"""The built-in `echo` model: deterministic, offline, streams word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence

from db.ports import ChatTurn, ModelReply, ModelSpec, ReplyDelta, Usage, estimate_tokens

LABELS = {
    "echo": True,
    "note": "built-in echo model: repeats the last user message; no AI model was asked",
}
_WORDS = re.compile(r"\s*\S+\s*|\s+")
# Simulated typing is for demos and tests: whatever chunk_delay_ms and the message's length,
# one reply never takes longer than this in all.
MAX_TYPING_SECONDS = 10.0


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
            typing = self.delay * len(_WORDS.findall(reply.content))
            await asyncio.sleep(min(typing, MAX_TYPING_SECONDS))
        return reply

    async def stream(self, turns: Sequence[ChatTurn]) -> AsyncGenerator[ReplyDelta | ModelReply]:
        reply = self._reply(turns)
        typed = 0.0
        for piece in _WORDS.findall(reply.content):
            if self.delay and typed < MAX_TYPING_SECONDS:
                pause = min(self.delay, MAX_TYPING_SECONDS - typed)
                typed += pause
                await asyncio.sleep(pause)
            yield ReplyDelta(piece)
        yield reply

    async def aclose(self) -> None:
        return None


class EchoProvider:
    name = "echo"

    def validate(self, spec: ModelSpec) -> None:
        """No rule of its own: `prefix` and `chunk_delay_ms` are checked for every provider
        (db.services.config_rules), like any parameter a provider reads."""

    def build(self, spec: ModelSpec) -> EchoClient:
        return EchoClient(spec)
