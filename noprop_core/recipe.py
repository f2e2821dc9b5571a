"""The recipe schema: TOML -> frozen attrs classes, with every error collected up front.

A recipe is one experiment. Plugin sections (``data``, ``model.backbone``, ``model.embedding``,
``model.schedule``, ``variant``, ``tracker``) pick their plugin with ``name``; the plugin's
config class defines the remaining keys. ``--set a.b=VALUE`` overrides are applied to the
raw TOML before validation; VALUE is read as a TOML value, else taken as a plain string.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import cattrs
import tomli
import tomli_w

from noprop_core.acceleration import AUTOCAST_DTYPES, COMPILE_BACKENDS
from noprop_core.config import (
    KIND_CONFIG_BASES,
    BackboneConfig,
    DatasetConfig,
    InvalidValue,
    LabelEmbeddingConfig,
    ScheduleConfig,
    TrackerConfig,
    VariantConfig,
    at_least,
    between,
    describe_errors,
    greater_than,
    make_converter,
    one_of,
)
from noprop_core.errors import PluginError, RecipeError
from noprop_core.heads import HEADS
from noprop_core.registry import Registry

DEFAULT_RECIPE = "digits_dt.toml"
DEFAULT_TRACKER = "aim"


@attrs.frozen(kw_only=True)
class HeadSection:
    name: str = attrs.field(default="softmax", validator=one_of(*HEADS))
    sigma: float = attrs.field(default=1.0, validator=greater_than(0))  # radial head only


@attrs.frozen(kw_only=True)
class ModelSection:
    backbone: BackboneConfig
    embedding: LabelEmbeddingConfig
    schedule: ScheduleConfig
    head: HeadSection = attrs.field(factory=HeadSection)


@attrs.frozen(kw_only=True)
class TrainSection:
    epochs: int = attrs.field(validator=at_least(1))
    batch_size: int = attrs.field(default=128, validator=at_least(1))
    optimizer: str = attrs.field(default="adamw", validator=one_of("adamw", "adam"))
    lr: float = attrs.field(default=1e-3, validator=greater_than(0))
    weight_decay: float = attrs.field(default=1e-3, validator=at_least(0))
    # "constant" (the paper) or "cosine": lr decays to 0 over the epochs, stepped once per epoch.
    lr_schedule: str = attrs.field(default="constant", validator=one_of("constant", "cosine"))
    # Largest gradient norm per unit (and for the shared parameters); 0 = no clipping.
    grad_clip: float = attrs.field(default=0.0, validator=at_least(0))
    # Stop each unit's pass after N minibatches (0 = the whole training set); for quick checks.
    max_batches: int = attrs.field(default=0, validator=at_least(0))
    # Under torchrun: "blocks" shards the units over ranks, "data" splits each minibatch
    # (see noprop_core.distributed). Ignored in a single process.
    distributed: str = attrs.field(default="blocks", validator=one_of("blocks", "data"))
    # Speed options, all off by default (noprop_core.acceleration):
    compile: str = attrs.field(default="none", validator=one_of(*COMPILE_BACKENDS))  # torch.compile each block
    channels_last: bool = False  # NHWC images and convolution weights
    autocast: str = attrs.field(default="none", validator=one_of(*AUTOCAST_DTYPES))  # mixed precision losses
    cuda_graph: bool = False  # the fused update of all blocks replayed as one CUDA graph


@attrs.frozen(kw_only=True)
class EvalSection:
    batch_size: int = attrs.field(default=1000, validator=at_least(1))
    # Test accuracy every N epochs (and always after the last): inference with 1000 steps can
    # cost more than an epoch of training on small data.
    every: int = attrs.field(default=1, validator=at_least(1))
    # Train accuracy is measured on the first N training examples (0 = all of them):
    # a full pass over a large training set would cost a third of an epoch.
    train_subset: int = attrs.field(default=10_000, validator=at_least(0))
    # Test accuracy on the first N test examples (0 = all of them); for quick checks only.
    test_subset: int = attrs.field(default=0, validator=at_least(0))


@attrs.frozen(kw_only=True)
class Recipe:
    seed: int = attrs.field(default=0, validator=between(0, 2**63 - 1))
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    data: DatasetConfig
    model: ModelSection
    variant: VariantConfig
    train: TrainSection
    eval: EvalSection = attrs.field(factory=EvalSection)
    tracker: TrackerConfig  # absent in a file -> DEFAULT_TRACKER


_KIND_OF_BASE = {base: kind for kind, base in KIND_CONFIG_BASES.items()}


def recipe_converter(registry: Registry) -> cattrs.Converter:
    """A converter whose plugin sections dispatch on ``name`` to the registered config class."""
    converter = make_converter()

    def structure_plugin_section(value: Any, base: type) -> Any:
        kind = _KIND_OF_BASE[base]
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
    converter.register_structure_hook_func(lambda cls: cls in _KIND_OF_BASE, structure_plugin_section)
    return converter


def default_recipe_path() -> Path:
    """``recipes/digits_dt.toml`` of the working directory if present, else the installed copy."""
    local = Path("recipes") / DEFAULT_RECIPE
    if local.is_file():
        return local
    return Path(str(resources.files("noprop_recipes") / DEFAULT_RECIPE))


def read_toml(path: Path) -> dict[str, Any]:
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
            problems.append(f"{origin}: --set: {exc}")
            continue
        table = raw
        for depth, key in enumerate(keys[:-1]):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                problems.append(f"{origin}: --set {text}: {'.'.join(keys[: depth + 1])} is not a table")
                break
        else:
            table[keys[-1]] = value
    if problems:
        raise RecipeError(problems)
    return raw


def structure_recipe(raw: dict[str, Any], registry: Registry, origin: str) -> Recipe:
    raw = {**raw, "tracker": raw.get("tracker", {"name": DEFAULT_TRACKER})}
    try:
        return recipe_converter(registry).structure(raw, Recipe)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes error lines
        raise RecipeError([f"{origin}: {key or '(top level)'}: {msg}" for key, msg in describe_errors(exc)]) from None


# Sections that choose a plugin by ``name``: a recipe that picks another plugin than its base
# replaces the whole section, since the base's keys belong to the base's plugin.
PLUGIN_SECTIONS = (
    ("data",),
    ("model", "backbone"),
    ("model", "embedding"),
    ("model", "schedule"),
    ("variant",),
    ("tracker",),
)
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


def read_with_bases(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at ``path`` with its ``extends`` chain applied (base first, then each child).

    ``extends = "other.toml"`` names a base recipe by a path relative to this file's folder.
    """
    raw = read_toml(path)
    base_name = raw.pop(EXTENDS, None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise RecipeError([f"{path}: {EXTENDS}: expected the file name of a base recipe, got {base_name!r}"])
    base_path = (path.parent / base_name).resolve()
    if base_path in chain or base_path == path.resolve():
        cycle = " -> ".join(p.name for p in (*chain, path.resolve(), base_path))
        raise RecipeError([f"{path}: {EXTENDS}: recipes extend each other in a circle ({cycle})"])
    if not base_path.is_file():
        raise RecipeError([f"{path}: {EXTENDS}: no base recipe {base_name!r} (looked for {base_path})"])
    return merge_onto(read_with_bases(base_path, (*chain, path.resolve())), raw)


def load_recipe(path: Path, registry: Registry, overrides: list[str] = ()) -> Recipe:
    raw = apply_overrides(read_with_bases(path), list(overrides), str(path))
    return structure_recipe(raw, registry, str(path))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def recipe_to_dict(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    """The fully resolved recipe as plain builtins (no None: TOML has no null)."""
    return _drop_none(recipe_converter(registry).unstructure(recipe))


def dump_recipe(recipe: Recipe, registry: Registry, header: str = "") -> str:
    text = tomli_w.dumps(recipe_to_dict(recipe, registry))
    return (header + "\n" if header else "") + text
