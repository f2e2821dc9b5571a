"""The recipes shipped with noprop, by name: ``noprop run cifar100_dt`` from any folder, and
``extends = "noprop:mnist_dt"`` in a recipe outside the checkout."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from noprop_core.errors import RecipeError

PREFIX = "noprop:"


def shipped_dir() -> Path:
    return Path(str(resources.files("noprop_recipes")))


def shipped_names() -> list[str]:
    return sorted(path.stem for path in shipped_dir().glob("*.toml"))


def did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def shipped_path(name: str, origin: str) -> Path:
    """The shipped recipe ``name`` (with or without ``noprop:`` and ``.toml``), or a one-line error."""
    stem = name.removeprefix(PREFIX).removesuffix(".toml")
    path = shipped_dir() / f"{stem}.toml"
    if "/" in stem or not path.is_file():
        names = shipped_names()
        raise RecipeError(
            [f"{origin}: no shipped recipe {stem!r}{did_you_mean(stem, names)}; `noprop recipes` lists them"]
        )
    return path


def resolve_recipe_path(path: Path) -> Path:
    """A recipe given on the command line: the file if it exists; else a shipped recipe named
    by its stem (``cifar100_dt``, ``cifar100_dt.toml`` or ``noprop:cifar100_dt``)."""
    text = str(path)
    if path.exists() and not text.startswith(PREFIX):
        return path
    if text.startswith(PREFIX) or (
        "/" not in text and (shipped_dir() / f"{text.removesuffix('.toml')}.toml").is_file()
    ):
        return shipped_path(text, text)
    stem = path.name.removesuffix(".toml")
    hint = did_you_mean(stem, shipped_names()) if "/" not in text else ""
    raise RecipeError([f"{path}: no such file, and no shipped recipe of that name{hint}"])
