"""The mutation-testing set-up stays in step with the code: every module pyproject.toml asks
mutmut to mutate exists, and every mutant listed as equivalent names a function that exists,
with a reason (tools/mutation.py; `nox -s mutation` runs the mutants themselves)."""

from __future__ import annotations

import ast
import fnmatch
import re

import tomli

from conftest import REPO

LOCAL_FOLDER = {"noprop_plugins": "plugins"}  # the scratch copy's name → this checkout's


def mutmut_config() -> dict:
    return tomli.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]


def functions_of(path) -> set[str]:
    """mutmut's mangled names of a module's functions and methods (x_f, xǁClassǁmethod)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(f"x_{node.name}")
        elif isinstance(node, ast.ClassDef):
            names |= {f"xǁ{node.name}ǁ{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
    return names


def test_every_module_to_mutate_exists():
    files = [p.relative_to(REPO).as_posix() for p in REPO.glob("*/**/*.py")]
    for pattern in mutmut_config()["only_mutate"]:
        top, _, rest = pattern.partition("/")
        local = f"{LOCAL_FOLDER.get(top, top)}/{rest}"
        assert any(fnmatch.fnmatch(f, local) for f in files), f"only_mutate {pattern!r} matches no file"


def test_every_listed_equivalent_mutant_names_a_real_function_and_a_reason():
    entries = tomli.loads((REPO / "tests" / "mutation_equivalents.toml").read_text())["equivalent"]
    assert entries
    for entry in entries:
        assert len(entry["reason"].split()) >= 8, entry["mutants"]
        for mutant in entry["mutants"]:
            module, function = re.fullmatch(r"(.+?)\.(x[_ǁ].+)__mutmut_\d+", mutant).groups()
            top, *rest = module.split(".")
            path = REPO / LOCAL_FOLDER.get(top, top) / ("/".join(rest) + ".py")
            if not path.exists():
                path = path.with_suffix("") / "__init__.py"
            assert path.exists(), mutant
            assert function in functions_of(path), f"{mutant}: no such function in {path.relative_to(REPO)}"
