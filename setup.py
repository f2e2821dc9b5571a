"""Package discovery: every folder with an ``__init__.py`` under noprop_core/ and plugins/ (installed
as ``noprop_plugins``) is a package, found here so that a new plugin or subpackage needs no list
to be edited. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup


def packages() -> list[str]:
    core = find_packages(include=["noprop_core", "noprop_core.*"])
    plugins = ["noprop_plugins", *(f"noprop_plugins.{name}" for name in find_packages("plugins"))]
    return [*core, *plugins, "noprop_recipes"]


if __name__ == "__main__":
    setup(packages=packages())
