"""The model input: a session's history as chat turns, trimmed to a budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from db.models import Message, MessageType
from db.ports import ChatTurn, Limits

# Parameters the gateway itself reads; providers must not forward them upstream.
GATEWAY_PARAMETERS = frozenset({"system_prompt", "max_history_messages", "max_history_tokens"})


def estimate_tokens(text: str) -> int:
    """A provider-neutral estimate (about four characters a token for English text)."""
    return max(1, (len(text) + 3) // 4)


async def model_input(
    *, session_id: str, up_to_seq: int, parameters: Mapping[str, Any], limits: Limits
) -> list[ChatTurn]:
    """The newest messages up to `up_to_seq`, oldest first, within the message and token budget.

    The newest message (the one being answered) is always kept, even alone over budget.
    """
    max_messages = parameters.get("max_history_messages") or limits.max_history_messages
    max_tokens = parameters.get("max_history_tokens") or limits.max_history_tokens
    rows = (
        await Message.filter(session_id=session_id, seq__lte=up_to_seq)
        .order_by("-seq")
        .limit(max_messages)
        .values_list("type", "content")
    )
    turns: list[ChatTurn] = []
    system_prompt = parameters.get("system_prompt")
    budget = max_tokens - (estimate_tokens(system_prompt) if system_prompt else 0)
    for kind, content in rows:
        cost = estimate_tokens(content)
        if turns and cost > budget:
            break
        budget -= cost
        turns.append(
            ChatTurn(role="user" if kind == MessageType.USER else "assistant", content=content)
        )
    turns.reverse()
    if system_prompt:
        turns.insert(0, ChatTurn(role="system", content=system_prompt))
    return turns
