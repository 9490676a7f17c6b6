"""Server-sent event bytes as Chat Completions servers stream them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DONE = b"data: [DONE]\n\n"


def frame(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def chunk(
    content: str | None = None, *, finish_reason: str | None = None, role: str | None = None
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "model": "gpt-fake-2024-01-01",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    """The final chunk `stream_options.include_usage` asks for: usage and no choices."""
    payload = chunk()
    payload["choices"] = []
    payload["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion}
    return payload


def reply_frames(
    pieces: Iterable[str], *, usage: tuple[int, int] | None = (9, 4), done: bool = True
) -> bytes:
    """A whole well-formed stream: a role chunk, one chunk per piece, finish, usage, [DONE]."""
    frames = [frame(chunk(role="assistant"))]
    frames += [frame(chunk(piece)) for piece in pieces]
    frames.append(frame(chunk(finish_reason="stop")))
    if usage is not None:
        frames.append(frame(usage_chunk(*usage)))
    if done:
        frames.append(DONE)
    return b"".join(frames)


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]
