"""AI model providers: implementations of `db.ports.ModelRegistry` and `ModelClient`."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from gateway.providers.echo import EchoProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.registry import Provider, ProviderClient, ProviderRegistry
from gateway.providers.retry import ProviderTimeouts, RetryPolicy

if TYPE_CHECKING:
    from gateway.settings import Settings


# The providers the gateway ships with; MODEL_PROVIDERS may name fewer.
SHIPPED = ("echo", "openai")


def default_registry(settings: Settings | None = None) -> ProviderRegistry:
    """The providers `settings` enable (all shipped ones by default), with their network
    timeouts and retries."""
    timeouts, retry = ProviderTimeouts(), RetryPolicy()
    enabled: Collection[str] = SHIPPED
    if settings is not None:
        timeouts = ProviderTimeouts(
            connect=settings.provider_connect_timeout,
            read=settings.provider_read_timeout,
            total=settings.provider_total_timeout,
        )
        retry = RetryPolicy(max_retries=settings.provider_max_retries)
        enabled = settings.model_providers
    shipped: list[Provider] = [EchoProvider(), OpenAIProvider(timeouts=timeouts, retry=retry)]
    return ProviderRegistry([provider for provider in shipped if provider.name in enabled])


__all__ = [
    "SHIPPED",
    "EchoProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderClient",
    "ProviderRegistry",
    "ProviderTimeouts",
    "RetryPolicy",
    "default_registry",
]
