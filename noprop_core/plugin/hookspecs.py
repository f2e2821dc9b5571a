"""The plugin hooks, one per plugin kind, generated from ``noprop_core.plugin.kinds.KINDS``.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names are these
hooks: ``noprop_register_variants``, ``noprop_register_backbones``,
``noprop_register_label_embeddings``, ``noprop_register_schedules``, ``noprop_register_heads``,
``noprop_register_datasets``, ``noprop_register_trackers``, ``noprop_register_launchers``. Each receives a ``registry`` for its
kind and calls ``registry.add(name, factory, config=ConfigClass)``; nothing is returned. The
config class is a frozen attrs class derived from the kind's config base; its fields are the
keys the recipe section may hold (``name`` selects the plugin). The factory is called as the
kind's protocol in ``noprop_core.plugin.kinds`` says. Third-party plugins are normal packages
whose ``pyproject.toml`` declares::

    [project.entry-points.noprop]
    my_backbone = "my_package.my_module"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

from noprop_core.plugin.kinds import KINDS, PluginKind

if TYPE_CHECKING:
    from noprop_core.plugin.registry import Registry

PROJECT = "noprop"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def _hook_for(kind: PluginKind) -> Callable[[Registry], None]:
    def register(registry: Registry) -> None:
        pass

    register.__name__ = register.__qualname__ = kind.hook
    register.__doc__ = (
        f"Register {kind.name} plugins (recipe section [{kind.section_key}]): "
        f"registry.add(name, factory, config=<subclass of {kind.config_base.__qualname__}>); "
        f"the factory is called as ({kind.describe_call()}). {kind.factory.__doc__}"
    )
    return hookspec(register)


for _kind in KINDS:
    globals()[_kind.hook] = _hook_for(_kind)
