"""The Chat Completions wire format: a reply from a JSON body, or assembled from stream chunks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from db.ports import ChatTurn, ModelReply, Usage
from gateway.providers.failures import Failure, Redactor, upstream_error

DONE = "[DONE]"
_LABELS = {
    "model": "upstream_model",
    "id": "response_id",
    "system_fingerprint": "system_fingerprint",
}


def messages_json(turns: Sequence[ChatTurn]) -> list[dict[str, str]]:
    return [{"role": turn.role, "content": turn.content} for turn in turns]


def parse_json(data: str | bytes, redact: Redactor) -> dict[str, Any]:
    """A JSON object, or a non-retryable failure (the start of what arrived goes to the log)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise Failure(
            "the model server sent malformed JSON",
            reason="malformed_response",
            # Redact before cutting: a cut could leave part of the key unrecognisable.
            details={"sample": redact(text)[:80]},
        )
    if payload.get("error"):
        raise reported_error(payload, redact)
    return payload


def reported_error(payload: Any, redact: Redactor) -> Failure:
    """An error object the server sent instead of a reply (in a 200 body or mid-stream)."""
    message, details = upstream_error(payload, redact)
    return Failure(
        f"the model server reported an error: {message or 'no message'}",
        reason="upstream_error",
        details=details,
    )


def completion_reply(payload: Mapping[str, Any], redact: Redactor) -> ModelReply:
    """The reply in a whole (non-streamed) chat.completion object."""
    choices = payload.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise Failure("the model server sent a reply without choices", reason="malformed_response")
    # A refusal arrives in its own field with no content; it is still the model's answer.
    content = message.get("content")
    if content is None:
        content = message.get("refusal") or ""
    if not isinstance(content, str):
        raise Failure("the model server sent non-text content", reason="malformed_response")
    return ModelReply(
        content=content,
        finish_reason=_text(first.get("finish_reason")) if isinstance(first, dict) else None,
        usage=usage_of(payload.get("usage")),
        labels=labels_of(payload, redact),
    )


def usage_of(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    usage = Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        completion_tokens=completion if isinstance(completion, int) else None,
    )
    return None if usage == Usage() else usage


def labels_of(payload: Mapping[str, Any], redact: Redactor) -> dict[str, str]:
    """Facts the server reports: the exact model (version) it ran, its response id.

    Stored and shown to users like everything the server says, so redacted the same way.
    """
    return {
        label: redact(payload[key]) for key, label in _LABELS.items() if _text(payload.get(key))
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class StreamState:
    """Assembles a streamed reply from `chat.completion.chunk` events."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._parts: list[str] = []
        self._labels: dict[str, Any] = {}
        self.done = False  # [DONE] arrived
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def apply(self, data: str, event: str = "message") -> str:
        """One event's data; returns the text it adds to the reply ("" when none)."""
        if event == "error":  # servers that name the event instead of sending {"error": ...}
            try:
                payload: Any = orjson.loads(data)
            except orjson.JSONDecodeError:
                payload = data
            raise reported_error(payload, self._redact)
        if not data.strip():  # an empty event: a keep-alive in another form
            return ""
        if data.strip() == DONE:
            self.done = True
            return ""
        chunk = parse_json(data, self._redact)
        self._labels.update(labels_of(chunk, self._redact))
        # Usage comes in the final chunk (choices empty), or with every chunk on some servers.
        self.usage = usage_of(chunk.get("usage")) or self.usage
        text = ""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # the gateway asks for one choice (n=1)
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(piece, str):
                text += piece
            self.finish_reason = _text(choice.get("finish_reason")) or self.finish_reason
        if text:
            self._parts.append(text)
        return text

    def reply(self) -> ModelReply:
        return ModelReply(
            content="".join(self._parts),
            finish_reason=self.finish_reason,
            usage=self.usage,
            labels=dict(self._labels),
        )
