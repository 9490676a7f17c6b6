"""Transport-neutral errors raised by the service layer; each door maps them in one table."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a service raises on purpose; `message` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ServiceError):
    """No credentials, or credentials that match no active key."""


class Forbidden(ServiceError):
    """The caller is known but may not do this; `actor_id` is who asked (for the audit)."""

    def __init__(self, message: str, *, actor_id: str | None = None) -> None:
        super().__init__(message)
        self.actor_id = actor_id


class NotFound(ServiceError):
    """The object does not exist, or the caller may not know that it does."""


class Invalid(ServiceError):
    """The input breaks a rule; `field` names the offending input when there is one."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class Busy(ServiceError):
    """The session is busy with another reply for longer than the caller may wait."""


class ModelFailed(ServiceError):
    """The AI model did not produce a reply; the user's message is kept."""


class ReplyStopped(ModelFailed):
    """The reply was stopped (on request, or by a shutdown) before the model said anything."""


class RateLimited(ServiceError):
    """The caller went over a rate limit; `retry_after` is how many whole seconds to wait."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
