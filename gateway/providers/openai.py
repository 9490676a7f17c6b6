"""The `openai` provider: the Chat Completions protocol over aiohttp, whole or streamed.

It speaks to OpenAI and to the servers that copy its protocol (vLLM, llama.cpp server,
Ollama's /v1, LM Studio, DeepSeek, Qwen, Azure-style deployments...).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson

from db.ports import ChatTurn, ModelError, ModelReply, ModelSpec, ReplyDelta
from gateway.providers.failures import Failure, Redactor
from gateway.providers.openai_options import request_options
from gateway.providers.openai_wire import StreamState, completion_reply, messages_json, parse_json
from gateway.providers.retry import Attempts, ProviderTimeouts, RetryPolicy
from gateway.providers.upstream import Upstream

logger = logging.getLogger(__name__)
USER_AGENT = "ai-chat-gateway"
JSON, EVENTS = "application/json", "text/event-stream"


class OpenAIProvider:
    name = "openai"

    def __init__(
        self, *, timeouts: ProviderTimeouts | None = None, retry: RetryPolicy | None = None
    ) -> None:
        self.timeouts = timeouts or ProviderTimeouts()
        self.retry = retry or RetryPolicy()

    def validate(self, spec: ModelSpec) -> None:
        """No rule of its own: the rules every provider shares are db.services.config_rules."""

    def build(self, spec: ModelSpec) -> OpenAIClient:
        return OpenAIClient(spec, timeouts=self.timeouts, retry=self.retry)


class OpenAIClient:
    """The client of one config version: one aiohttp session with its own connection pool."""

    def __init__(self, spec: ModelSpec, *, timeouts: ProviderTimeouts, retry: RetryPolicy) -> None:
        self._spec = spec
        self._timeouts = timeouts
        self._retry = retry
        options = request_options(spec)
        self._parameters = options.parameters
        self._stream_options = options.stream_options
        # Read once, at build time: a changed variable takes effect with the next config version.
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        self._missing_key = spec.api_key_env if spec.api_key_env and not key else None
        self._redact = Redactor(key)
        headers = {"User-Agent": USER_AGENT, **options.headers}
        if key:
            bearer = options.key_header.lower() == "authorization"
            headers[options.key_header] = f"Bearer {key}" if bearer else key
        self._upstream = Upstream(options.url, headers, timeouts, self._redact)

    async def complete(self, turns: Sequence[ChatTurn]) -> ModelReply:
        body = self._body(turns, stream=False)
        attempts = self._attempts()
        while True:
            attempts.start()
            try:
                async with self._upstream.post(body, attempts, accept=JSON) as response:
                    data = await self._upstream.read(response, attempts)
                return _counted(self._whole_reply(data), attempts)
            except Failure as failure:
                await self._before_retry(failure, attempts)

    async def stream(self, turns: Sequence[ChatTurn]) -> AsyncGenerator[ReplyDelta | ModelReply]:
        body = self._body(turns, stream=True)
        attempts = self._attempts()
        while True:
            attempts.start()
            streamed = False
            try:
                async with self._upstream.post(body, attempts, accept=EVENTS) as response:
                    if response.content_type == JSON:
                        # A server that ignores `stream: true` answers with one whole object.
                        data = await self._upstream.read(response, attempts)
                        reply = self._whole_reply(data)
                    else:
                        state = StreamState(self._redact)
                        async with aclosing(self._upstream.events(response, attempts)) as events:
                            async for event in events:
                                text = state.apply(event.data, event.event)
                                if text:
                                    streamed = True
                                    yield ReplyDelta(text)
                                if state.done:
                                    break
                        if state.done:
                            await self._upstream.drain(response)
                        reply = self._finished(state)
            except Failure as failure:
                if streamed:  # the caller has text already: asking again would repeat it
                    raise failure.error(attempts.count) from failure
                await self._before_retry(failure, attempts)
                continue
            if not streamed and reply.content:
                yield ReplyDelta(reply.content)
            yield _counted(reply, attempts)
            return

    async def aclose(self) -> None:
        await self._upstream.aclose()

    def _whole_reply(self, data: bytes) -> ModelReply:
        return completion_reply(parse_json(data, self._redact), self._redact)

    @staticmethod
    def _finished(state: StreamState) -> ModelReply:
        # Without [DONE], the reply counts only if the model said why it stopped (some
        # servers omit the terminator); otherwise it may be cut short and is not stored.
        if not state.done and state.finish_reason is None:
            raise Failure(
                "the model stream ended early (no [DONE] and no finish reason)",
                reason="stream_ended_early",
                retryable=True,  # honoured only while no text has reached the caller
            )
        return state.reply()

    def _body(self, turns: Sequence[ChatTurn], *, stream: bool) -> bytes:
        if self._missing_key:  # raised at reply time so it reaches the caller and the log
            raise ModelError(
                f"the environment variable {self._missing_key} (the config's api_key_env) "
                "is not set on the server",
                details={"reason": "missing_api_key", "attempts": 0},
            )
        body: dict[str, Any] = {
            **self._parameters,
            "model": self._spec.model_name,
            "messages": messages_json(turns),
        }
        if stream:
            body["stream"] = True
            if self._stream_options is not None:
                body["stream_options"] = {"include_usage": True, **self._stream_options}
        return orjson.dumps(body)

    def _attempts(self) -> Attempts:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts.total
        return Attempts(self._retry, deadline=deadline, clock=loop.time)

    async def _before_retry(self, failure: Failure, attempts: Attempts) -> None:
        """Wait before the next attempt, or raise the caller's `ModelError` if there is none."""
        delay = attempts.delay_before_retry(failure.retry_after) if failure.retryable else None
        where = f"model {self._spec.model_name} (config {self._spec.config_id})"
        if delay is None:
            error = failure.error(attempts.count)
            logger.warning("%s failed after %d attempt(s): %s", where, attempts.count, error)
            raise error from failure
        logger.warning(
            "%s: attempt %d failed (%s, status %s); retrying in %.2f s",
            where,
            attempts.count,
            failure.reason,
            failure.status,
            delay,
        )
        await asyncio.sleep(delay)


def _counted(reply: ModelReply, attempts: Attempts) -> ModelReply:
    # "attempts" in the message metadata shows when a reply needed retries.
    return replace(reply, labels={**reply.labels, "attempts": attempts.count})
