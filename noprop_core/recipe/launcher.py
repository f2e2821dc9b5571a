"""The ``[launcher]`` table: from a sweep file, a launcher file (``--launcher FILE``) or a
launcher's name (``--launcher slurm``), with ``--launcher-set KEY=VALUE`` on top. Checked as
strictly as a recipe section: unknown keys and bad values are one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from noprop_core.errors import RecipeError
from noprop_core.plugin.config import LauncherConfig
from noprop_core.plugin.kinds import BY_NAME
from noprop_core.plugin.launcher import Launcher
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.conversion import describe_errors, dotted, one_line, recipe_converter
from noprop_core.recipe.loading import apply_overrides, read_toml

SECTION = "launcher"


def launcher_config(table: dict[str, Any], registry: Registry, origin: str) -> LauncherConfig:
    """The ``[launcher]`` table as its plugin's config; ``origin`` names the file in errors."""
    try:
        config = recipe_converter(registry).structure(table, LauncherConfig)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes error lines
        raise RecipeError(
            [
                f"{origin}: {dotted((SECTION, *key.split('.'))) if key else SECTION}: {one_line(msg)}"
                for key, msg in describe_errors(exc)
            ]
        ) from None
    assert isinstance(config, LauncherConfig)
    return config


def launcher_table(option: str | None, sets: list[str]) -> tuple[dict[str, Any], str]:
    """The table ``--launcher NAME|FILE`` and ``--launcher-set`` describe, and its origin."""
    default = BY_NAME[SECTION].default
    option = option or default
    assert option is not None
    if option.endswith(".toml"):
        raw = read_toml(Path(option))
        table = raw.get(SECTION)
        extra = sorted(set(raw) - {SECTION})
        if not isinstance(table, dict) or extra:
            found = f"found {', '.join(extra)}" if extra else "found none"
            raise RecipeError([f"{option}: expected a launcher file holding one [launcher] table, {found}"])
        origin = option
    else:
        table, origin = {"name": option}, "--launcher"
    wrapped = apply_overrides({SECTION: dict(table)}, [f"{SECTION}.{text}" for text in sets], origin)
    return wrapped[SECTION], origin


def build_launcher(config: LauncherConfig, registry: Registry) -> Launcher:
    launcher = registry.get(SECTION, config.name).factory(config)
    assert isinstance(launcher, Launcher), f"launcher {config.name} returned {launcher!r}, not a Launcher"
    return launcher


def launcher_from_options(option: str | None, sets: list[str], registry: Registry) -> Launcher:
    table, origin = launcher_table(option, sets)
    return build_launcher(launcher_config(table, registry, origin), registry)
