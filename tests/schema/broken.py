"""A provider with a bug, registered only for the GraphQL tests (see conftest.registry)."""

from __future__ import annotations

from db.ports import ModelSpec
from gateway.providers.echo import EchoClient


class BrokenProvider:
    """Checking any config raises a plain RuntimeError whose text holds something no client
    may see: the way an unexpected error reaches a door without patching anything."""

    name = "broken"
    internals = "postgres://gateway:hunter2@db.internal:5432/prod"

    def validate(self, spec: ModelSpec) -> None:
        raise RuntimeError(f"lost connection to {self.internals}")

    def build(self, spec: ModelSpec) -> EchoClient:
        raise RuntimeError(f"lost connection to {self.internals}")
