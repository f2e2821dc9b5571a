"""Property-based: any mutation of a valid recipe is refused by `noprop run` with exit status 2,
one line per problem naming the offending key, no traceback, and no run started."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from noprop_core.cli.main import main
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe, recipe_to_dict

REGISTRY = load_registry()
BASE = recipe_to_dict(load_recipe(REPO / "recipes" / "digits_dt.toml", REGISTRY), REGISTRY)
PLUGIN_SECTIONS = {
    ("data",): "dataset",
    ("model", "backbone"): "backbone",
    ("model", "embedding"): "label_embedding",
    ("model", "schedule"): "schedule",
    ("variant",): "variant",
    ("tracker",): "tracker",
}
REQUIRED = [
    ("data",),
    ("model",),
    ("variant",),
    ("train",),
    ("model", "backbone"),
    ("train", "epochs"),
    ("variant", "name"),
    ("model", "schedule", "name"),
]


def leaves(table: dict, prefix: tuple = ()) -> list[tuple[tuple, object]]:
    found = []
    for key, value in table.items():
        found += leaves(value, (*prefix, key)) if isinstance(value, dict) else [((*prefix, key), value)]
    return found


def tables(table: dict, prefix: tuple = ()) -> list[tuple]:
    return [prefix] + [t for k, v in table.items() if isinstance(v, dict) for t in tables(v, (*prefix, k))]


LEAVES, TABLES = leaves(BASE), tables(BASE)
NUMERIC = [(path, value) for path, value in LEAVES if isinstance(value, (int, float)) and not isinstance(value, bool)]
WRONG = {
    int: ["ten", 1.5, True, [1]],
    float: ["x", True, [0.5]],
    str: [3, 1.5, True, ["a"]],
    bool: ["yes", 1],
    list: [3, "x", [1.5], [True]],
}
# Keys that take more than one type: wrong values of their own.
WRONG_AT = {("speed", "threads"): ["many", 0, 1.5, True, ["a"]], ("speed", "cuda_graph"): ["sometimes", 3, 1.5, ["a"]]}


def mutated(path: tuple, value: object = None, delete: bool = False) -> dict:
    recipe = __import__("copy").deepcopy(BASE)
    table = recipe
    for key in path[:-1]:
        table = table[key]
    if delete:
        del table[path[-1]]
    else:
        table[path[-1]] = value
    return recipe


@st.composite
def mutations(draw) -> tuple[dict, str]:
    """A broken recipe and the key path its error must name."""
    kind = draw(st.sampled_from(["wrong type", "unknown key", "missing", "unknown plugin", "negative"]))
    if kind == "wrong type":
        path, value = draw(st.sampled_from(LEAVES))
        return mutated(path, draw(st.sampled_from(WRONG_AT.get(path) or WRONG[type(value)]))), ".".join(path)
    if kind == "unknown key":
        table = draw(st.sampled_from(TABLES))
        name = draw(
            st.text("abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12).filter(lambda k: not k.startswith("_"))
        )
        existing = BASE
        for key in table:
            existing = existing[key]
        if name in existing:
            name += "_typo"
        return mutated((*table, name), 1), ".".join((*table, name))
    if kind == "missing":
        path = draw(st.sampled_from(REQUIRED))
        return mutated(path, delete=True), ".".join(path)
    if kind == "unknown plugin":
        section, plugin_kind = draw(st.sampled_from(sorted(PLUGIN_SECTIONS.items())))
        name = draw(
            st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10).filter(
                lambda n: n not in REGISTRY.names(plugin_kind)
            )
        )
        return mutated((*section, "name"), name), ".".join((*section, "name"))
    path, value = draw(st.sampled_from(NUMERIC))
    negative = (
        draw(st.integers(max_value=-1)) if isinstance(value, int) else draw(st.floats(max_value=-1e-3, min_value=-1e9))
    )
    return mutated(path, negative), ".".join(path)


def run_cli(path: Path, out: Path) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(["run", str(path), "--out", str(out)])
    return status, stderr.getvalue()


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(case=mutations())
def test_every_mutated_recipe_is_refused_naming_its_key(case, tmp_path):
    recipe, key = case
    path, out = tmp_path / "mutated.toml", tmp_path / "never"
    path.write_text(tomli_w.dumps(recipe))
    status, stderr = run_cli(path, out)
    lines = stderr.splitlines()
    assert status == 2, stderr
    assert lines and all(line.startswith(f"noprop: error: {path}: ") for line in lines), stderr
    assert any(line.startswith(f"noprop: error: {path}: {key}") for line in lines), (key, stderr)
    assert "Traceback" not in stderr and not out.exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_in_one_line_each(data, tmp_path):
    path, out = tmp_path / "bytes.toml", tmp_path / "never"
    path.write_bytes(data)
    status, stderr = run_cli(path, out)
    assert status == 2 and stderr, stderr
    assert all(line.startswith(f"noprop: error: {path}: ") for line in stderr.splitlines())
    assert "Traceback" not in stderr and not out.exists()
