"""Loading plugins: entry points of the ``noprop`` group into a pluggy manager, then a Registry.

Environment switches:
- ``NOPROP_DISABLE_PLUGIN_AUTOLOAD=1``: load only noprop's own entry points (tests use it so
  that whatever else is installed cannot change their outcome).
- ``NOPROP_TRACE_HOOKS=1``: print every hook call to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from importlib import metadata

import pluggy

from noprop_core.errors import PluginError
from noprop_core.plugin import hookspecs
from noprop_core.plugin.kinds import KINDS
from noprop_core.plugin.registry import BrokenPlugin, PluginSource, Registry

ENTRY_POINT_GROUP = "noprop"
FIRST_PARTY_DISTRIBUTION = "noprop"
DISABLE_AUTOLOAD_ENV = "NOPROP_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "NOPROP_TRACE_HOOKS"


def _switch(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _entry_points(third_party: bool) -> list[metadata.EntryPoint]:
    points = []
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = point.dist.name if point.dist is not None else "unknown"
        if third_party or distribution == FIRST_PARTY_DISTRIBUTION:
            points.append(point)
    return points


def load_registry(extra_plugins: Iterable[tuple[str, object]] = (), *, autoload: bool | None = None) -> Registry:
    """Import the plugins, call their hooks and return the filled registry.

    ``extra_plugins`` are ``(name, module_or_object)`` pairs registered in-process (tests,
    notebooks). A plugin that fails to import or register is recorded in ``registry.broken``;
    two registrations of one name raise PluginError naming both distributions.
    """
    if autoload is None:
        autoload = not _switch(DISABLE_AUTOLOAD_ENV)
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    sources: dict[str, PluginSource] = {}

    for point in _entry_points(third_party=autoload):
        dist = point.dist
        source = PluginSource(point.name, dist.name if dist else "unknown", dist.version if dist else "")
        try:
            module = point.load()
            manager.register(module, name=f"{source.distribution}:{point.name}")
        except Exception as exc:  # noqa: BLE001 - any failure of third-party code is reported, not raised
            registry.broken.append(BrokenPlugin(source, f"failed to import {point.value}: {exc!r}"))
            continue
        sources[f"{source.distribution}:{point.name}"] = source

    for name, plugin in extra_plugins:
        manager.register(plugin, name=name)
        sources[name] = PluginSource(name, "(registered in process)")

    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or ""
        raise PluginError(f"{sources[name].describe() if name in sources else name}: {exc}") from None

    if _switch(TRACE_ENV):
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()

    _call_hooks_per_plugin(manager, registry, sources)
    return registry


def _call_hooks_per_plugin(manager: pluggy.PluginManager, registry: Registry, sources: dict[str, PluginSource]) -> None:
    # Each plugin's hooks are called on their own, with a registry that knows which
    # distribution is registering; this is what lets duplicate names name both sides.
    for plugin_name, plugin in manager.list_name_plugin():
        others = [p for p in manager.get_plugins() if p is not plugin]
        source = sources[plugin_name]
        for kind in KINDS:
            call = manager.subset_hook_caller(kind.hook, remove_plugins=others)
            try:
                call(registry=registry.for_source(kind.name, source))
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001
                registry.broken.append(BrokenPlugin(source, f"{kind.hook} raised {exc!r}"))
                break
