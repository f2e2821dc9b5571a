"""Config building blocks: base classes per plugin kind, validators, and a strict converter.

Every recipe section is a frozen attrs class. Plugin sections carry a ``name`` that selects the
plugin; the plugin's own config class (a subclass of the kind's base below) defines the other
keys. The converter forbids unknown keys, never coerces scalars (``"10"`` is not an int), and
reports every problem as ``(key path, message)`` so the CLI can print them all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override


@attrs.frozen(kw_only=True)
class PluginConfig:
    """Base of every plugin section: ``name`` picks the plugin registered under that name."""

    name: str


@attrs.frozen(kw_only=True)
class BackboneConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class LabelEmbeddingConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class ScheduleConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class VariantConfig(PluginConfig):
    pass


@attrs.frozen(kw_only=True)
class TrackerConfig(PluginConfig):
    pass


class InvalidValue(ValueError):
    """A value that is the right type but not acceptable; ``field`` is the key it belongs to."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _check(predicate: Callable[[Any], bool], expectation: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    def validate(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not predicate(value):
            raise InvalidValue(attribute.name, f"expected {expectation}, got {value!r}")

    return validate


def at_least(bound: float) -> Callable[[Any, attrs.Attribute, Any], None]:
    return _check(lambda v: v >= bound, f"a number >= {bound}")


def greater_than(bound: float) -> Callable[[Any, attrs.Attribute, Any], None]:
    return _check(lambda v: v > bound, f"a number > {bound}")


def between(low: float, high: float) -> Callable[[Any, attrs.Attribute, Any], None]:
    return _check(lambda v: low <= v <= high, f"a number in [{low}, {high}]")


def one_of(*choices: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    return _check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


@attrs.frozen(kw_only=True)
class DatasetConfig(PluginConfig):
    """Keys every dataset section has. ``root`` defaults to $NOPROP_DATA, then ./data."""

    root: str | None = None
    subset: int = attrs.field(default=0, validator=at_least(0))  # first N training examples; 0 = all
    # Where the splits live during training: "device" (batched by indexing on the training
    # device), "host" (kept in CPU memory, minibatches through a DataLoader), or "auto": the
    # device when they fit in half of its free memory (noprop_core.data.resolve_placement).
    placement: str = attrs.field(default="auto", validator=one_of("auto", "device", "host"))
    workers: int = attrs.field(default=0, validator=at_least(0))  # DataLoader processes ("host" only)


KIND_CONFIG_BASES: dict[str, type[PluginConfig]] = {
    "backbone": BackboneConfig,
    "label_embedding": LabelEmbeddingConfig,
    "schedule": ScheduleConfig,
    "variant": VariantConfig,
    "dataset": DatasetConfig,
    "tracker": TrackerConfig,
}


def _strict(kind: type, label: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _type: type) -> Any:
        # bool is a subclass of int in Python; a recipe's `true` is never a number.
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise InvalidValue("", f"expected {label}, got {value!r}")
        return value

    return structure


def _structure_float(value: Any, _type: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue("", f"expected a number, got {value!r}")
    return float(value)


def _validated_field(converter: cattrs.Converter, field: attrs.Attribute) -> Callable[[Any, type], Any]:
    def structure(value: Any, _type: type) -> Any:
        result = converter.structure(value, field.type)
        try:
            field.validator(None, field, result)
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
        return make_dict_structure_fn(cls, converter, **overrides)

    converter.register_structure_hook_factory(attrs.has, structure_attrs_class)
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(float, _structure_float)
    # Plugin sections are declared by their kind's base class but hold a plugin's subclass:
    # unstructure the instance's own fields, not the declared ones.
    bases = set(KIND_CONFIG_BASES.values())
    converter.register_unstructure_hook_func(lambda cls: cls in bases, lambda obj: attrs.asdict(obj))
    return converter


def describe_errors(exc: BaseException, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Flatten a cattrs validation error into ``(dotted.key.path, message)`` pairs."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from describe_errors(sub, (*path, note.name))
        for sub in without:
            yield from describe_errors(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from describe_errors(sub, (*path, str(note.index)))
        for sub in without:
            yield from describe_errors(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        allowed = ", ".join(sorted(a.name for a in attrs.fields(exc.cl))) if attrs.has(exc.cl) else ""
        for key in sorted(exc.extra_fields):
            yield ".".join((*path, key)), f"unknown key (allowed here: {allowed})"
    elif isinstance(exc, InvalidValue):
        yield ".".join((*path, exc.field) if exc.field else path), exc.message
    elif isinstance(exc, KeyError):
        yield ".".join(path), "missing required key"
    else:
        yield ".".join(path) or "(top level)", str(exc)
