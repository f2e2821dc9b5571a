"""The code's shape is checked, not described: the formatter owns the layout, and the engine's
top level stays a map of its jobs."""

from __future__ import annotations

import ast
import shutil
import subprocess

import pytest

from conftest import REPO

SOURCES = ("noprop_core", "plugins", "tests", "benchmarks", "tools", "examples", "noxfile.py")


def ruff() -> str:
    found = shutil.which("ruff", path=str(REPO / ".venv" / "bin")) or shutil.which("ruff")
    assert found, "ruff is a dev dependency: pip install -e '.[dev]'"
    return found


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_ruff_finds_nothing_to_change(command):
    result = subprocess.run([ruff(), *command, *SOURCES], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_line_is_kept_from_the_formatter():
    markers = ("fmt: " + "skip", "fmt: " + "off")  # split, so that this file holds neither
    held = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in SOURCES
        for path in sorted((REPO / folder).rglob("*.py") if (REPO / folder).is_dir() else [REPO / folder])
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(marker in line for marker in markers)
    ]
    assert held == []


LIMIT = 40  # lines of code in one function of noprop_core


def lines_of_code(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    """A function's lines, less its docstring, blank lines and comment lines."""
    docstring: set[int] = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        docstring = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    numbers = range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return sum(
        1 for n in numbers if n not in docstring and lines[n - 1].strip() and not lines[n - 1].strip().startswith("#")
    )


def test_no_function_of_the_core_is_longer_than_40_lines_of_code():
    long = []
    for path in sorted((REPO / "noprop_core").rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count = lines_of_code(node, source.splitlines())
                if count > LIMIT:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {count}")
    assert long == []


def test_the_engines_top_level_is_a_map_of_its_jobs():
    """At most 8 modules beside its subpackages (training, runs, trained, report, sweep)."""
    engine = REPO / "noprop_core" / "engine"
    modules = sorted(path.name for path in engine.glob("*.py"))
    packages = sorted(path.name for path in engine.iterdir() if (path / "__init__.py").is_file())
    assert len(modules) <= 8, modules
    assert packages == ["report", "runs", "sweep", "trained", "training"]
