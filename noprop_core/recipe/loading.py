"""Loading recipes: TOML files, ``extends`` chains, ``--set`` overrides, and writing them back.

``--set a.b=VALUE`` overrides are applied to the raw TOML before validation; VALUE is read as a
TOML value, else taken as a plain string.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tomli
import tomli_w

from noprop_core.errors import RecipeError
from noprop_core.plugin.kinds import RECIPE_KINDS
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.conversion import dotted, one_line, recipe_converter, structure_recipe
from noprop_core.recipe.schema import Recipe
from noprop_core.recipe.shipped import PREFIX, shipped_dir, shipped_path

DEFAULT_RECIPE = "digits_dt.toml"


def default_recipe_path() -> Path:
    """``recipes/digits_dt.toml`` of the working directory if present, else the installed copy."""
    local = Path("recipes") / DEFAULT_RECIPE
    if local.is_file():
        return local
    return shipped_dir() / DEFAULT_RECIPE


def read_toml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO or device would block or never end
        raise RecipeError([f"{path}: not a regular file, expected a .toml recipe"])
    try:
        with open(path, "rb") as handle:
            return tomli.load(handle)
    except FileNotFoundError:
        raise RecipeError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise RecipeError([f"{path}: is a directory, expected a .toml recipe"]) from None
    except OSError as exc:
        raise RecipeError([f"{path}: cannot read: {exc.strerror}"]) from None
    except (tomli.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise RecipeError([f"{path}: not valid TOML: nested too deeply"]) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=3"`` -> (["train", "epochs"], 3). Values are TOML values or plain strings."""
    key, sep, raw = text.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise ValueError(f"expected KEY=VALUE with a dotted key, got {text!r}")
    try:
        value = tomli.loads(f"value = {raw}")["value"]
    except tomli.TOMLDecodeError:
        value = raw
    return [k.strip() for k in keys], value


def apply_overrides(raw: dict[str, Any], overrides: list[str], origin: str) -> dict[str, Any]:
    problems = []
    for text in overrides:
        try:
            keys, value = parse_override(text)
        except ValueError as exc:
            problems.append(f"{origin}: --set: {one_line(str(exc))}")
            continue
        table = raw
        for depth, key in enumerate(keys[:-1]):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                problems.append(f"{origin}: --set {text!r}: {dotted(keys[: depth + 1])} is not a table")
                break
        else:
            table[keys[-1]] = value
    if problems:
        raise RecipeError(problems)
    return raw


# Sections that choose a plugin by ``name``: a recipe that picks another plugin than its base
# replaces the whole section, since the base's keys belong to the base's plugin.
PLUGIN_SECTIONS = tuple(kind.section for kind in RECIPE_KINDS)
EXTENDS = "extends"


def merge_onto(base: dict[str, Any], child: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``child`` over ``base``: tables merge key by key, other values replace."""
    merged = dict(base)
    for key, value in child.items():
        inner = (*path, key)
        same_plugin = inner not in PLUGIN_SECTIONS or (
            isinstance(value, dict)
            and isinstance(base.get(key), dict)
            and value.get("name", base[key].get("name")) == base[key].get("name")
        )
        if isinstance(value, dict) and isinstance(base.get(key), dict) and same_plugin:
            merged[key] = merge_onto(base[key], value, inner)
        else:
            merged[key] = value
    return merged


EXTENDS_ROOTS_ENV = "NOPROP_RECIPE_ROOTS"


def extends_roots(path: Path) -> list[Path]:
    """Where a recipe's ``extends`` may reach: its own folder tree, the shipped recipes, and the
    folders listed in $NOPROP_RECIPE_ROOTS (separated by ``:``). A shared recipe thus cannot
    merge an arbitrary file of the machine into a run."""
    extra = [Path(p).expanduser().resolve() for p in os.environ.get(EXTENDS_ROOTS_ENV, "").split(os.pathsep) if p]
    return [path.parent.resolve(), shipped_dir().resolve(), *extra]


def base_recipe_path(path: Path, base_name: str, roots: list[Path]) -> Path:
    if base_name.startswith(PREFIX):
        return shipped_path(base_name, f"{path}: {EXTENDS}")
    base_path = (path.parent / base_name).resolve()
    if not any(base_path.is_relative_to(root) for root in roots):
        raise RecipeError(
            [
                f"{path}: {EXTENDS}: {base_name!r} is outside {roots[0]} (the recipe's folder tree); "
                f"extend a shipped recipe as 'noprop:NAME', or allow the folder in ${EXTENDS_ROOTS_ENV}"
            ]
        )
    return base_path


def read_with_bases(path: Path, chain: tuple[Path, ...] = (), roots: list[Path] | None = None) -> dict[str, Any]:
    """The recipe at ``path`` with its ``extends`` chain applied (base first, then each child).

    ``extends = "other.toml"`` names a base recipe by a path relative to this file's folder
    (within ``extends_roots``); ``extends = "noprop:NAME"`` a shipped recipe.
    """
    roots = roots if roots is not None else extends_roots(path)
    raw = read_toml(path)
    if "seed" in raw and isinstance(raw.get("seeds"), list) and raw["seeds"]:
        raise RecipeError(
            [f"{path}: seeds: seed is set too; give one (seed = N trains one model, seeds = [...] one per seed)"]
        )
    base_name = raw.pop(EXTENDS, None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise RecipeError([f"{path}: {EXTENDS}: expected the file name of a base recipe, got {base_name!r}"])
    base_path = base_recipe_path(path, base_name, roots)
    if base_path in chain or base_path == path.resolve():
        cycle = " -> ".join(p.name for p in (*chain, path.resolve(), base_path))
        raise RecipeError([f"{path}: {EXTENDS}: recipes extend each other in a circle ({cycle})"])
    if not base_path.is_file():
        raise RecipeError([f"{path}: {EXTENDS}: no base recipe {base_name!r} (looked for {base_path})"])
    return one_seed_key(merge_onto(read_with_bases(base_path, (*chain, path.resolve()), roots), raw), raw.keys())


def one_seed_key(merged: dict[str, Any], given: Iterable[str]) -> dict[str, Any]:
    """``seed`` and ``seeds`` replace each other: the one given last (by a child recipe or --set) wins."""
    given = set(given)
    if "seed" in given and "seeds" not in given:
        merged.pop("seeds", None)
    elif "seeds" in given and "seed" not in given:
        merged.pop("seed", None)
    return merged


def one_seed(seed: int) -> list[str]:
    """The overrides that make a recipe train one model with ``seed`` (not a seed group)."""
    return ["seeds=[]", f"seed={seed}"]


def load_recipe(path: Path | str, registry: Registry, overrides: Sequence[str] = ()) -> Recipe:
    path = Path(path)
    raw = apply_overrides(read_with_bases(path), list(overrides), str(path))
    raw = one_seed_key(raw, (text.split("=", 1)[0].strip() for text in overrides))
    return structure_recipe(raw, registry, str(path))


def override_recipe(recipe: Recipe, registry: Registry, overrides: list[str], origin: str) -> Recipe:
    """A recipe already in memory with ``--set``-style overrides applied, checked as a file's would be."""
    if not overrides:
        return recipe
    raw = recipe_to_dict(recipe, registry)
    for text in overrides:  # another plugin by name: the resolved keys of the one it replaces go
        try:
            keys, value = parse_override(text)
        except ValueError:
            continue  # apply_overrides reports it
        table = _table_at(raw, keys[:-1])
        if keys[-1] == "name" and table is not None and table.get("name") != value:
            table.clear()
    raw = apply_overrides(raw, list(overrides), origin)
    raw = one_seed_key(raw, (text.split("=", 1)[0].strip() for text in overrides))
    return structure_recipe(raw, registry, origin)


def _table_at(raw: dict[str, Any], keys: list[str]) -> dict[str, Any] | None:
    table: Any = raw
    for key in keys:
        table = table.get(key) if isinstance(table, dict) else None
    return table if isinstance(table, dict) else None


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def recipe_to_dict(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    """The fully resolved recipe as plain builtins (no None: TOML has no null), with ``seeds``
    for a seed group and ``seed`` otherwise (a file holds one of them)."""
    resolved = _drop_none(recipe_converter(registry).unstructure(recipe))
    resolved.pop("seed" if recipe.seeds else "seeds")
    return resolved


def dump_recipe(recipe: Recipe, registry: Registry, header: str = "") -> str:
    text = tomli_w.dumps(recipe_to_dict(recipe, registry))
    return (header + "\n" if header else "") + text
