"""The architecture is checked, not described: import-linter's contracts, the public API, the
variant contract asked only through its declared members, and the kinds table as the one list."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys

import pytest

import noprop_core
from conftest import REPO
from noprop_core.plugin import hookspecs
from noprop_core.plugin.kinds import KINDS

PLUGIN_SOURCES = sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "examples").rglob("*.py")])


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(REPO / ".venv" / "bin")) or shutil.which("lint-imports")
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run(
        [lint, "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def imports_of(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_import_only_the_public_api(path):
    """First-party plugins and the third-party example: `noprop_core` itself, or the contract kit
    in tests; never a core submodule, never another plugin."""
    allowed = {"noprop_core"} | ({"noprop_core.testing"} if "tests" in path.parts else set())
    core = [m for m in imports_of(path) if m.split(".")[0] == "noprop_core" and m not in allowed]
    other_plugins = [m for m in imports_of(path) if m.startswith("noprop_plugins")]
    assert not core and not other_plugins, (core, other_plugins)


OUTSIDE_THE_CLI = sorted(
    path
    for folder in ("noprop_core", "benchmarks", "tools", "examples", "plugins")
    for path in (REPO / folder).rglob("*.py")
    if "cli" not in path.relative_to(REPO).parts
) + [REPO / "noxfile.py"]


def test_nothing_outside_the_cli_imports_it():
    """Python users, benchmarks and nox sessions go through the engine (``noprop_core.train`` …);
    the command line is one client of it, not a library."""
    importers = [
        str(path.relative_to(REPO))
        for path in OUTSIDE_THE_CLI
        if any(m.startswith("noprop_core.cli") for m in imports_of(path))
    ]
    assert importers == []


def test_every_public_name_resolves_and_none_is_a_submodule():
    for name in noprop_core.__all__:
        assert getattr(noprop_core, name) is not None, name
    assert len(noprop_core.__all__) == len(set(noprop_core.__all__))
    with pytest.raises(AttributeError, match="nope"):
        noprop_core.nope  # noqa: B018


@pytest.mark.parametrize("module", ["noprop_core", "noprop_core.cli.main", "noprop_core.recipe.loading"])
def test_the_public_api_the_command_line_and_the_recipe_schema_load_no_torch(module):
    """`noprop --help` stays instant; torch comes with the first plugin or training module used."""
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


LIGHT_COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "plugins": ["plugins"],
    "validate": ["validate", *(str(p) for p in sorted((REPO / "recipes").glob("*.toml")))],
}


@pytest.mark.parametrize("command", LIGHT_COMMANDS.values(), ids=LIGHT_COMMANDS.keys())
def test_light_commands_import_no_torch_and_no_aim(command):
    """`noprop --help`, `--version`, `plugins` and `validate` (every shipped recipe, every
    first-party plugin registered) start without torch, torchvision or Aim: first-party
    plugins keep torch in the modules their factories import when a run builds them."""
    code = (
        "import sys, contextlib, io\n"
        "from noprop_core.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        status = main(sys.argv[1:])\n"
        "    except SystemExit as exc:\n"
        "        status = exc.code\n"
        "heavy = [m for m in ('torch', 'torchvision', 'aim', 'medmnist') if m in sys.modules]\n"
        "print(status, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.stdout.strip().splitlines()[-1] in ("0 []", "None []"), result.stdout + result.stderr


def test_the_core_has_at_most_four_top_level_modules():
    modules = sorted(p.name for p in (REPO / "noprop_core").glob("*.py"))
    assert len(modules) <= 4, modules


def test_the_written_out_hook_specs_match_the_kinds_table():
    """One hook per kind, named as the table says, whose docstring names the kind, its recipe
    section, its config base and the factory's call as the kind's protocol has it."""
    assert [name for name in dir(hookspecs) if name.startswith("noprop_register_")] == sorted(k.hook for k in KINDS)
    for kind in KINDS:
        hook = getattr(hookspecs, kind.hook)
        doc = " ".join(hook.__doc__.split())
        assert f"Register {kind.name} plugins" in doc and f"[{kind.section_key}]" in doc, kind.name
        assert f"subclass of {kind.config_base.__qualname__}" in doc and f"({kind.describe_call()})" in doc, kind.name
        assert list(inspect.signature(hook).parameters) == ["registry"]


def test_the_engine_asks_variants_only_through_the_contract():
    """No `getattr`/`hasattr` of a variant or its config, no `attrs.fields_dict` of a plugin's
    config anywhere in the core (the contract test kit aside, which checks declared keys)."""
    offenders = []
    for path in (REPO / "noprop_core").rglob("*.py"):
        if path.name == "testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            arguments = " ".join(ast.unparse(a) for a in node.args)
            if name in ("getattr", "hasattr") and "variant" in arguments:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
            if name == "attrs.fields_dict":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "\n".join(offenders)


def test_every_package_folder_is_in_the_wheel(tmp_path):
    """A real wheel, built from the tree: every folder with an __init__.py is in it (setup.py
    finds them: a new plugin folder needs no list), with the recipes and the public-name stub."""
    import zipfile

    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(REPO),
    ]
    subprocess.run(build, check=True, timeout=300, capture_output=True)
    [wheel] = tmp_path.glob("noprop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    roots = {
        "noprop_core": REPO / "noprop_core",
        "noprop_plugins": REPO / "plugins",
        "noprop_recipes": REPO / "recipes",
    }
    folders = {
        ".".join((top, *init.parent.relative_to(root).parts))
        for top, root in roots.items()
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders - packaged == set()
    assert "noprop_core/__init__.pyi" in names and sum(
        name.startswith("noprop_recipes/") and name.endswith(".toml") for name in names
    ) == len(list((REPO / "recipes").glob("*.toml")))


# String literals of the core that equal a registered plugin's name, and why each may stay. Any
# other is the core naming a plugin: plugins declare what the core needs (``paper_label``,
# ``display_name``, ``records_nothing``, the kinds table's defaults) instead.
PLUGIN_NAME_LITERALS_ALLOWED = {
    "noprop_core/plugin/kinds.py": {"softmax", "aim", "local"},  # the kinds table: the default plugin of a section
    "noprop_core/testing.py": {"cnn", "learned", "cosine", "softmax", "dt", "ct"},  # the kit's parts; ids
    "noprop_core/engine/report/paper.py": {"prototype"},  # the paper's own name of its embedding
    "noprop_core/engine/training/trainer.py": {"cosine"},  # train.lr_schedule
    "noprop_core/recipe/schema.py": {"cosine"},  # train.lr_schedule
    # "none": the value of an option switched off (speed.compile, a sweep's pruner, a step's term)
    **dict.fromkeys(
        (
            "noprop_core/diffusion/objectives.py",
            "noprop_core/engine/sweep/study.py",
            "noprop_core/engine/sweep/trial.py",
            "noprop_core/recipe/sweep.py",
            "noprop_core/speed/plan.py",
            "noprop_core/speed/section.py",
        ),
        {"none"},
    ),
}


def test_the_core_names_no_plugin():
    from noprop_core.plugin.manager import load_registry

    registry = load_registry()
    plugin_names = {name for kind in KINDS for name in registry.names(kind.name)}
    found = []
    for path in sorted((REPO / "noprop_core").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        allowed = PLUGIN_NAME_LITERALS_ALLOWED.get(relative, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in plugin_names and node.value not in allowed:
                found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert not found, "the core names plugins:\n" + "\n".join(found)
