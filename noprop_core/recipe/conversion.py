"""Raw TOML -> a validated ``Recipe``, with every problem reported as ``file: key.path: message``.

The converter forbids unknown keys, never coerces scalars (``"10"`` is not an int), runs each
field's validator as the field is structured (so all errors are found at once), and dispatches
plugin sections on their ``name`` to the registered plugin's config class.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override

from noprop_core.errors import PluginError, RecipeError
from noprop_core.plugin.config import InvalidValue
from noprop_core.plugin.kinds import BY_CONFIG_BASE, RECIPE_KINDS
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.schema import Recipe
from noprop_core.speed.section import MOVED_FROM_TRAIN


def _strict(kind: type | tuple[type, ...], label: str) -> Callable[[Any, type], Any]:
    kinds = kind if isinstance(kind, tuple) else (kind,)

    def structure(value: Any, _type: type) -> Any:
        # bool is a subclass of int in Python; a recipe's `true` is never a number.
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise InvalidValue("", f"expected {label}, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise InvalidValue("", f"expected a whole number that fits in 64 bits, got {value}")
        return value

    return structure


def _structure_float(value: Any, _type: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue("", f"expected a number, got {value!r}")
    if not math.isfinite(value) or abs(value) > 1e300:  # nan, ±inf; int → float overflow
        raise InvalidValue("", f"expected a finite number, got {value!r}")
    return float(value)


def _list_from_array(converter: cattrs.Converter) -> Callable[[Any, Any], list[Any]]:
    def structure(value: Any, list_type: Any) -> list[Any]:
        if not isinstance(value, list):
            raise InvalidValue("", f"expected a list (a TOML array: [ ... ]), got {value!r}")
        (item,) = list_type.__args__
        return [converter.structure(entry, item) for entry in value]

    return structure


def _validated_field(converter: cattrs.Converter, field: attrs.Attribute[Any]) -> Callable[[Any, type], Any]:
    validator, field_type = field.validator, field.type
    assert validator is not None and field_type is not None  # fields with validators, types resolved

    def structure(value: Any, _type: type) -> Any:
        result = converter.structure(value, field_type)
        try:
            validator(None, field, result)
        except InvalidValue as exc:
            raise InvalidValue("", exc.message) from None  # cattrs adds the field to the path
        return result

    return structure


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    # attrs runs validators in __init__, which cattrs only reaches when every field structured;
    # running each field's validator as that field is structured reports all errors at once.
    def structure_attrs_class(cls: type) -> Callable[[Any, type], Any]:
        attrs.resolve_types(cls)
        overrides = {
            field.name: override(struct_hook=_validated_field(converter, field))
            for field in attrs.fields(cls)
            if field.validator is not None
        }
        structure_fields: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]  # per-field overrides

        def structure(value: Any, _type: type) -> Any:
            if not isinstance(value, dict):
                raise InvalidValue("", f"expected a table (a TOML [section] or {{ key = value }}), got {value!r}")
            return structure_fields(value, _type)

        return structure

    converter.register_structure_hook_factory(attrs.has, structure_attrs_class)
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(float, _structure_float)
    # A name or a count (speed.threads): passed on as given; the field's validator says what fits.
    converter.register_structure_hook(str | int, _strict((str, int), "a string or a whole number"))
    converter.register_structure_hook(bool | str, _strict((bool, str), "true, false or a string"))
    # A TOML array for a list: a string would otherwise be split into its characters.
    converter.register_structure_hook_func(
        lambda cls: getattr(cls, "__origin__", None) is list, _list_from_array(converter)
    )
    # Plugin sections are declared by their kind's base class but hold a plugin's subclass:
    # unstructure the instance's own fields, not the declared ones.
    converter.register_unstructure_hook_func(lambda cls: cls in BY_CONFIG_BASE, lambda obj: attrs.asdict(obj))
    return converter


def recipe_converter(registry: Registry) -> cattrs.Converter:
    """A converter whose plugin sections dispatch on ``name`` to the registered config class."""
    converter = make_converter()

    def structure_plugin_section(value: Any, base: type) -> Any:
        kind = BY_CONFIG_BASE[base].name
        if not isinstance(value, dict):
            raise InvalidValue("", f"expected a table with a 'name' key, got {value!r}")
        name = value.get("name")
        if name is None:
            raise InvalidValue("name", f"missing required key (the {kind} plugin to use)")
        if not isinstance(name, str):
            raise InvalidValue("name", f"expected a string, got {name!r}")
        try:
            config_class = registry.get(kind, name).config
        except PluginError as exc:
            raise InvalidValue("name", str(exc)) from None
        return converter.structure(value, config_class)

    # A predicate hook matches the kind bases exactly; a class hook would also catch the
    # plugins' subclasses (dispatch by MRO) and recurse.
    converter.register_structure_hook_func(lambda cls: cls in BY_CONFIG_BASE, structure_plugin_section)
    return converter


def with_default_plugins(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw recipe with each absent plugin section that has a default plugin filled in."""
    raw = dict(raw)
    for kind in RECIPE_KINDS:
        if kind.default is None:
            continue
        *parents, last = kind.section
        table = raw
        for key in parents:
            if not isinstance(table.get(key), dict):
                break  # the schema reports the missing or misshapen table itself
            table[key] = table = dict(table[key])
        else:
            table.setdefault(last, {"name": kind.default})
    return raw


def moved_keys(raw: dict[str, Any], origin: str) -> list[str]:
    """Speed options still under [train], each as an error line saying where it moved."""
    train = raw.get("train")
    if not isinstance(train, dict):
        return []
    return [
        f"{origin}: train.{key}: moved to speed.{key} (the [speed] section holds the speed options)"
        for key in MOVED_FROM_TRAIN
        if key in train
    ]


def structure_recipe(raw: dict[str, Any], registry: Registry, origin: str) -> Recipe:
    moved = moved_keys(raw, origin)
    if moved:
        raise RecipeError(moved)
    try:
        recipe = recipe_converter(registry).structure(with_default_plugins(raw), Recipe)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes error lines
        raise RecipeError(
            [f"{origin}: {key or '(top level)'}: {one_line(msg)}" for key, msg in describe_errors(exc)]
        ) from None
    if "schedule" in recipe.variant.model_parts() and recipe.model.schedule is None:
        raise RecipeError(
            [f"{origin}: model.schedule: missing required key (variant '{recipe.variant.name}' uses a noise schedule)"]
        )
    return recipe


BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(parts: Iterable[str]) -> str:
    """A key path as TOML writes it: bare keys as they are, others quoted (so a key holding a
    newline or a dot cannot break the one-line error or hide where it is)."""
    return ".".join(part if BARE_KEY.fullmatch(part) else json.dumps(part) for part in parts)


def one_line(message: str) -> str:
    return " ".join(message.split("\n"))


def describe_errors(exc: BaseException, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Flatten a cattrs validation error into ``(dotted.key.path, message)`` pairs."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from describe_errors(sub, (*path, note.name))
        for sub in without:
            yield from describe_errors(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_index, without_index = exc.group_exceptions()
        for sub, item in with_index:
            yield from describe_errors(sub, (*path, str(item.index)))
        for sub in without_index:
            yield from describe_errors(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(sorted(a.name for a in attrs.fields(exc.cl))) if attrs.has(exc.cl) else ""
        for key in sorted(exc.extra_fields):
            yield dotted((*path, key)), f"unknown key (allowed here: {allowed})"
    elif isinstance(exc, InvalidValue):
        yield dotted((*path, exc.field) if exc.field else path), exc.message
    elif isinstance(exc, KeyError):
        yield dotted(path), "missing required key"
    else:
        yield dotted(path) or "(top level)", str(exc)
