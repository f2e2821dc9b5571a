"""The plugin registry: for each plugin kind, name -> factory + config class + origin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from noprop_core.errors import NopropError, PluginError
from noprop_core.plugin.config import PluginConfig
from noprop_core.plugin.kinds import BY_NAME, KINDS


@attrs.frozen
class PluginSource:
    """Where a registration came from: the entry point (or in-process plugin) and its distribution."""

    plugin: str
    distribution: str
    version: str = ""

    def describe(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin '{self.plugin}' of distribution '{self.distribution}{version}'"


@attrs.frozen
class PluginEntry:
    kind: str
    name: str
    factory: Callable[..., Any]
    config: type[PluginConfig]
    source: PluginSource
    description: str = ""


@attrs.frozen
class BrokenPlugin:
    source: PluginSource
    reason: str

    def message(self) -> str:
        return f"{self.source.describe()} is broken: {self.reason}"


class KindRegistry:
    """What a hook implementation receives: it registers plugins of one kind."""

    def __init__(self, registry: Registry, kind: str, source: PluginSource) -> None:
        self._registry = registry
        self.kind = kind
        self.source = source

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type[PluginConfig],
        description: str = "",
    ) -> None:
        kind = BY_NAME[self.kind]
        base = kind.config_base
        if not (isinstance(config, type) and attrs.has(config) and issubclass(config, base)):
            raise PluginError(
                f"{self.source.describe()}: {self.kind} '{name}' needs an attrs config class "
                f"derived from noprop_core.{base.__qualname__}, got {config!r}"
            )
        mismatch = kind.factory_mismatch(factory)
        if mismatch is not None:
            raise PluginError(f"{self.source.describe()}: {self.kind} '{name}': {mismatch}")
        self._registry.add(PluginEntry(self.kind, name, factory, config, self.source, description))


class Registry:
    """All registered plugins by kind, plus the plugins that failed to load."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, PluginEntry]] = {kind.name: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []

    def for_source(self, kind: str, source: PluginSource) -> KindRegistry:
        return KindRegistry(self, kind, source)

    def add(self, entry: PluginEntry) -> None:
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None:
            raise PluginError(
                f"{entry.kind} '{entry.name}' is registered twice: by "
                f"{existing.source.describe()} and by {entry.source.describe()}"
            )
        self._entries[entry.kind][entry.name] = entry

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> list[PluginEntry]:
        return [self._entries[kind][name] for name in self.names(kind)]

    def get(self, kind: str, name: str) -> PluginEntry:
        try:
            return self._entries[kind][name]
        except KeyError:
            available = ", ".join(self.names(kind)) or "none registered"
            broken = "".join(f"; {b.message()}" for b in self.broken if b.source.plugin == name)
            if not broken and self.broken:
                broken = f"; it may come from a broken plugin ({', '.join(b.source.plugin for b in self.broken)})"
            raise PluginError(f"unknown {kind} {name!r} (available: {available}){broken}") from None

    def build(self, kind: str, config: PluginConfig, *args: Any, expect: type | None = None, **kwargs: Any) -> Any:
        """Call the factory registered under ``config.name`` with the config and extra arguments.

        A factory that raises (other than a NopropError, already one line) or returns something
        other than ``expect`` is reported in one line naming the plugin and its distribution."""
        entry = self.get(kind, config.name)
        try:
            product = entry.factory(config, *args, **kwargs)
        except NopropError:
            raise
        except Exception as exc:  # noqa: BLE001 - third-party code: name it instead of a traceback
            message = " ".join(str(exc).split())[:300]
            raise PluginError(
                f"{kind} {config.name!r} ({entry.source.describe()}) failed: {type(exc).__name__}: {message}"
            ) from exc
        if expect is not None and not isinstance(product, expect):
            raise PluginError(
                f"{kind} {config.name!r} ({entry.source.describe()}): its factory returned "
                f"{type(product).__name__}, expected {expect.__name__}"
            )
        return product

    def warn_if_broken(self, notify: Callable[[str], None]) -> None:
        """Broken plugins stop only the recipes that use them; everyone else is told once."""
        for broken in self.broken:
            notify(
                f"noprop: warning: {broken.message()}; recipes using it fail "
                f"(NOPROP_DISABLE_PLUGIN_AUTOLOAD=1 loads only noprop's own plugins)"
            )
