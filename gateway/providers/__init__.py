"""AI model providers: implementations of `db.ports.ModelRegistry` and `ModelClient`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.providers.echo import EchoProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.registry import Provider, ProviderClient, ProviderRegistry
from gateway.providers.retry import ProviderTimeouts, RetryPolicy

if TYPE_CHECKING:
    from gateway.settings import Settings


def default_registry(settings: Settings | None = None) -> ProviderRegistry:
    """Every provider the gateway ships with; network timeouts and retries from `settings`."""
    timeouts, retry = ProviderTimeouts(), RetryPolicy()
    if settings is not None:
        timeouts = ProviderTimeouts(
            connect=settings.provider_connect_timeout,
            read=settings.provider_read_timeout,
            total=settings.provider_total_timeout,
        )
        retry = RetryPolicy(max_retries=settings.provider_max_retries)
    return ProviderRegistry([EchoProvider(), OpenAIProvider(timeouts=timeouts, retry=retry)])


__all__ = [
    "EchoProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderClient",
    "ProviderRegistry",
    "ProviderTimeouts",
    "RetryPolicy",
    "default_registry",
]
