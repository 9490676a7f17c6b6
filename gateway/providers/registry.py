"""Provider lookup and the client cache: one client per config version, rebuilt on change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

from db.errors import Invalid
from db.ports import ModelClient, ModelSpec

logger = logging.getLogger(__name__)


class ProviderClient(ModelClient, Protocol):
    async def aclose(self) -> None:
        """Release connections; called once no reply uses the client any more."""
        ...


class Provider(Protocol):
    name: str

    def validate(self, spec: ModelSpec) -> None:
        """Raise `db.errors.Invalid` naming the field if a config cannot work."""
        ...

    def build(self, spec: ModelSpec) -> ProviderClient: ...


class _Entry:
    def __init__(self, spec: ModelSpec, client: ProviderClient) -> None:
        self.spec = spec
        self.client = client
        self.users = 0
        self.retired = False


class ProviderRegistry:
    """Implements `db.ports.ModelRegistry` over a set of providers."""

    def __init__(self, providers: Iterable[Provider]) -> None:
        self._providers = {provider.name: provider for provider in providers}
        self._current: dict[str, _Entry] = {}
        self._retired_busy: set[_Entry] = set()  # replaced, but a reply still uses them
        self._closing: set[asyncio.Task[None]] = set()

    def providers(self) -> Collection[str]:
        return self._providers.keys()

    def validate(self, spec: ModelSpec) -> None:
        self._provider(spec.provider).validate(spec)

    @asynccontextmanager
    async def lease(self, spec: ModelSpec) -> AsyncIterator[ModelClient]:
        entry = self._entry_for(spec)
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                self._retired_busy.discard(entry)
                await self._close(entry)

    def retire(self, config_id: str, *, version: int) -> None:
        entry = self._current.get(config_id)
        if entry is None or entry.spec.version >= version:
            return
        logger.info(
            "model config %s changed (version %s -> %s): dropping its client",
            config_id,
            entry.spec.version,
            version,
        )
        del self._current[config_id]
        self._retire(entry)

    def open_clients(self) -> int:
        """Clients built and not yet closed (current and retired-but-busy)."""
        closing = sum(1 for task in self._closing if not task.done())
        return len(self._current) + len(self._retired_busy) + closing

    async def aclose(self) -> None:
        entries = list(self._current.values())
        self._current.clear()
        for entry in entries:
            entry.retired = True
            await self._close(entry)

    def _provider(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            raise Invalid(f"unknown provider {name!r}; known: {known}", field="provider")
        return provider

    def _entry_for(self, spec: ModelSpec) -> _Entry:
        entry = self._current.get(spec.config_id)
        if entry is not None and entry.spec == spec:
            return entry
        fresh = _Entry(spec, self._provider(spec.provider).build(spec))
        if entry is not None and spec.version < entry.spec.version:
            # A reader that saw an older version: serve it once, keep the newer client cached.
            fresh.retired = True
            self._retired_busy.add(fresh)
            return fresh
        if entry is not None:
            logger.info(
                "model config %s changed (version %s -> %s): rebuilding its client",
                spec.config_id,
                entry.spec.version,
                spec.version,
            )
            self._retire(entry)
        self._current[spec.config_id] = fresh
        return fresh

    def _retire(self, entry: _Entry) -> None:
        entry.retired = True
        if entry.users == 0:
            self._spawn_close(entry)
        else:
            self._retired_busy.add(entry)

    def _spawn_close(self, entry: _Entry) -> None:
        task = asyncio.get_running_loop().create_task(self._close(entry))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, entry: _Entry) -> None:
        try:
            await entry.client.aclose()
        except Exception:
            logger.exception("closing the client of model config %s failed", entry.spec.config_id)
