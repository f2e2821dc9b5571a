"""Property-based fuzzing of the recipe schema (hypothesis): whatever a recipe file or a --set
holds — wrong types, wrong shapes, extreme numbers, unicode, unknown keys — `noprop validate`
exits 0 or 2, prints no traceback, every error line is one `noprop: error: FILE: …` line, and
nothing is written."""

from __future__ import annotations

import copy
import os
import string
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from noprop_core.cli.main import main
from noprop_core.plugin.kinds import KINDS
from noprop_core.plugin.manager import load_registry
from noprop_core.recipe.loading import load_recipe, recipe_to_dict

REGISTRY = load_registry(autoload=False)
RESOLVED = recipe_to_dict(load_recipe(REPO / "recipes" / "digits_dt.toml", REGISTRY), REGISTRY)


def dotted_keys(table: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in table.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += dotted_keys(value, f"{prefix}{key}.")
    return keys


KNOWN_KEYS = dotted_keys(RESOLVED)
PLUGIN_NAMES = [name for kind in KINDS for name in REGISTRY.names(kind.name)]

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63 - 1, -(2**63), 10**6]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(PLUGIN_NAMES + ["auto", "cpu", "cuda", "xpu", "meta", "cosine", "sequential", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
new_keys = st.text(alphabet=string.ascii_letters + "_äü€", min_size=1, max_size=8)
paths = st.one_of(
    st.sampled_from(KNOWN_KEYS), st.builds(lambda k, n: f"{k}.{n}", st.sampled_from(KNOWN_KEYS), new_keys)
)


def put(table: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        child = table.get(key)
        if not isinstance(child, dict):
            child = table[key] = {}
        table = child
    table[last] = value


def toml_literal(value) -> str | None:
    text = tomli_w.dumps({"v": value}) if not isinstance(value, dict) else ""
    return text.split("=", 1)[1].strip() if text.startswith("v =") and text.count("\n") == 1 else None


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    edits=st.lists(st.tuples(paths, values), min_size=1, max_size=4),
    overrides=st.lists(st.tuples(paths, values | st.text(max_size=10)), max_size=2),
)
def test_any_recipe_and_set_is_valid_or_one_line_errors(edits, overrides, tmp_path_factory, capfd):
    folder = tmp_path_factory.mktemp("fuzz")
    recipe = copy.deepcopy(RESOLVED)
    for path, value in edits:
        put(recipe, path, value)
    try:
        text = tomli_w.dumps(recipe)
    except (TypeError, ValueError):  # not expressible in TOML (e.g. a list mixing tables and scalars)
        return
    path = folder / "r.toml"
    path.write_text(text)
    argv = ["validate", str(path)]
    for key, value in overrides:
        literal = value if isinstance(value, str) else toml_literal(value)
        if literal is not None:
            argv += ["--set", f"{key}={literal}"]
    before = sorted(p.name for p in folder.iterdir())
    os.environ["NOPROP_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    code = main(argv)
    out, err = capfd.readouterr()
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    for line in err.split("\n")[:-1]:  # a terminal's lines (str.splitlines also splits at \x1c-\x1e, \x85 …)
        assert line.startswith(f"noprop: error: {path}: "), line
    if code == 2:
        assert err and sorted(p.name for p in folder.iterdir()) == before
    else:
        assert out.strip() == f"{path}: ok"


def test_the_fuzz_reaches_both_outcomes():
    """The strategies are not so wild that every example is an error: a valid edit passes."""
    assert Path(REPO / "recipes" / "digits_dt.toml").is_file()
    assert main(["validate", str(REPO / "recipes" / "digits_dt.toml"), "--set", "train.epochs=7"]) == 0
