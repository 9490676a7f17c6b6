"""AI model providers: implementations of `db.ports.ModelRegistry` and `ModelClient`."""

from gateway.providers.echo import EchoProvider
from gateway.providers.registry import Provider, ProviderClient, ProviderRegistry


def default_registry() -> ProviderRegistry:
    """Every provider the gateway ships with."""
    return ProviderRegistry([EchoProvider()])


__all__ = ["EchoProvider", "Provider", "ProviderClient", "ProviderRegistry", "default_registry"]
