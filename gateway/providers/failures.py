"""How a provider failure becomes a `ModelError` that is safe to show and useful to log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from db.ports import ModelError

MAX_UPSTREAM_MESSAGE_CHARS = 300
REDACTED = "[redacted]"
# RFC 6750 token characters; "[redacted]" itself does not match, so it is not eaten.
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*")
# OpenAI-style secret keys, should a server repeat one that is not ours.
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Failure(Exception):
    """One attempt failed. `retryable`: asking again may help (only before any token).

    Providers raise only this internally, so every `ModelError` they let out is built in
    one place and always carries `attempts` and `reason` in its details.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.details = dict(details or {})

    def error(self, attempts: int) -> ModelError:
        message = self.message
        if attempts > 1:
            message = f"{message} (gave up after {attempts} attempts)"
        details = {"reason": self.reason, "attempts": attempts, **self.details}
        return ModelError(message, status=self.status, details=details)


class Redactor:
    """Cleans text that came from a server before it reaches a user or a log: the API key
    (a server may echo it), any bearer token, control characters, and excess length."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret or None

    def __call__(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, REDACTED)
        text = _BEARER.sub(f"Bearer {REDACTED}", text)
        text = _SK_KEY.sub(REDACTED, text)
        text = _CONTROL.sub(" ", text).strip()
        if len(text) > MAX_UPSTREAM_MESSAGE_CHARS:
            text = text[: MAX_UPSTREAM_MESSAGE_CHARS - 1] + "…"
        return text

    def value(self, value: Any) -> Any:
        """An upstream error `type`/`code` for the log: strings cleaned, numbers kept."""
        if isinstance(value, str):
            return self(value)
        return value if isinstance(value, int | float | bool) or value is None else None


def upstream_error(payload: Any, redact: Redactor) -> tuple[str | None, dict[str, Any]]:
    """The message and the type/code of an OpenAI-style error object, cleaned."""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, str):
        return redact(error) or None, {}
    if not isinstance(error, dict):
        return None, {}
    message = error.get("message") or error.get("detail")
    details = {
        f"upstream_{name}": redact.value(error[name]) for name in ("type", "code") if name in error
    }
    return (redact(message) or None) if isinstance(message, str) else None, details


def http_failure(
    status: int, body: bytes, redact: Redactor, *, retryable: bool, retry_after: float | None
) -> Failure:
    """A non-200 answer, with the server's own explanation when it gave one."""
    try:
        message, details = upstream_error(orjson.loads(body), redact)
    except orjson.JSONDecodeError:
        text = redact(body.decode("utf-8", errors="replace"))
        message, details = text or None, {}
    text = f"the model server answered HTTP {status}"
    if message:
        text = f"{text}: {message}"
    if retry_after is not None:
        details["retry_after"] = retry_after
    return Failure(
        text,
        reason="http_status",
        status=status,
        retryable=retryable,
        retry_after=retry_after,
        details=details,
    )
