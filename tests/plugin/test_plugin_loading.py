"""Plugin loading through entry points, the registry, and its errors."""

from __future__ import annotations

import sys
import types

import attrs
import pytest

from conftest import REPO
from helpers import install_distribution
from noprop_core.errors import PluginError
from noprop_core.plugin.config import BackboneConfig, ScheduleConfig
from noprop_core.plugin.hookspecs import hookimpl
from noprop_core.plugin.kinds import KINDS
from noprop_core.plugin.manager import load_registry


def entry_points() -> dict[str, str]:
    """pyproject.toml's [project.entry-points.noprop]: entry point name -> module."""
    import tomli

    return tomli.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["noprop"]


def test_every_plugin_folder_arrives_through_the_entry_point_group(registry):
    """Each folder plugins/<kind>/<name>/ is one entry point of the `noprop` group, and each
    entry point registers plugins under its own name as their source; nothing failed to load."""
    points = entry_points()
    folders = {
        f"noprop_plugins.{p.parent.name}.{p.name}"
        for p in (REPO / "plugins").glob("*/*")
        if (p / "__init__.py").is_file()
    }
    assert set(points.values()) == folders
    first_party = [
        entry for kind in KINDS for entry in registry.entries(kind.name) if entry.source.distribution == "noprop"
    ]
    assert {entry.source.plugin for entry in first_party} == set(points)
    assert registry.broken == []


def test_unknown_name_lists_what_is_available(registry):
    available = ", ".join(registry.names("variant"))
    with pytest.raises(PluginError) as unknown:
        registry.get("variant", "nope")
    assert str(unknown.value) == f"unknown variant 'nope' (available: {available})"


@attrs.frozen(kw_only=True)
class TinyConfig(BackboneConfig):
    width: int = 4


def _plugin(name: str, hook_name: str = "noprop_register_backbones", config: type = TinyConfig) -> types.ModuleType:
    """An in-process plugin module whose hook registers ``name``."""

    def register(registry):
        registry.add(name, lambda *args: None, config=config)

    module = types.ModuleType(f"plugin_{name}")
    setattr(module, hook_name, hookimpl(register))
    return module


def test_an_in_process_plugin_registers_a_backbone():
    registry = load_registry([("tiny", _plugin("tiny"))], autoload=False)
    entry = registry.get("backbone", "tiny")
    assert entry.config is TinyConfig and entry.source.plugin == "tiny"


def test_two_plugins_taking_one_name_are_both_named():
    with pytest.raises(
        PluginError, match="backbone 'cnn' is registered twice: by plugin 'cnn' of distribution 'noprop"
    ):
        load_registry([("impostor", _plugin("cnn"))], autoload=False)


def test_a_misspelled_hook_fails_at_once():
    with pytest.raises(PluginError, match="impostor"):
        load_registry([("impostor", _plugin("x", hook_name="noprop_register_backbone"))], autoload=False)


def test_a_config_class_of_the_wrong_kind_is_refused():
    plugin = _plugin("odd", hook_name="noprop_register_schedules", config=TinyConfig)
    with pytest.raises(PluginError, match="derived from noprop_core.ScheduleConfig"):
        load_registry([("odd", plugin)], autoload=False)


@pytest.fixture
def installed_third_party(tmp_path, monkeypatch):
    """Two real distributions on sys.path (dist-info + module): one that works, one that fails to import."""

    def distribution(name: str, module: str, source: str) -> None:
        install_distribution(tmp_path, name, module, source)

    distribution(
        "noprop-good-plugin",
        "good_backbone",
        """
        import attrs
        from noprop_core.plugin.config import BackboneConfig, ScheduleConfig
        from noprop_core.plugin.hookspecs import hookimpl

        @attrs.frozen(kw_only=True)
        class GoodConfig(BackboneConfig):
            pass

        @hookimpl
        def noprop_register_backbones(registry):
            registry.add("good", lambda config, spec: None, config=GoodConfig)
        """,
    )
    distribution("noprop-broken-plugin", "broken_backbone", "raise ImportError('needs a missing library')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for module in ("good_backbone", "broken_backbone"):
        sys.modules.pop(module, None)


def test_third_party_plugins_load_and_broken_ones_are_named(installed_third_party):
    registry = load_registry(autoload=True)
    assert registry.get("backbone", "good").source.distribution == "noprop-good-plugin"
    [broken] = registry.broken
    assert "plugin 'broken_backbone' of distribution 'noprop-broken-plugin 1.2'" in broken.message()
    assert "needs a missing library" in broken.message()
    # A recipe naming the broken plugin's name is told why it is missing.
    with pytest.raises(PluginError, match=r"unknown backbone 'broken_backbone' .*noprop-broken-plugin 1.2' is broken"):
        registry.get("backbone", "broken_backbone")


def test_the_autoload_switch_keeps_only_first_party_plugins(installed_third_party, monkeypatch):
    monkeypatch.setenv("NOPROP_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_registry()
    assert "good" not in registry.names("backbone") and registry.broken == []
    assert "cnn" in registry.names("backbone")


def test_the_cli_lists_the_rest_and_marks_the_broken_plugin(installed_third_party, tmp_path):
    import os
    import subprocess

    from helpers import NOPROP

    env = {k: v for k, v in os.environ.items() if k != "NOPROP_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # where the fixture installed them
    listing = subprocess.run([NOPROP, "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 1, listing.stderr  # scripts can tell that a plugin does not load
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert rows[0] == ["kind", "name", "distribution", "version", "description"]
    assert ["backbone", "good", "noprop-good-plugin", "1.2", ""] in rows
    assert ["backbone", "cnn", "noprop"] == rows[[r[1] for r in rows].index("cnn")][:3]
    [broken] = [row for row in rows if row[0] == "BROKEN"]
    assert broken[:4] == ["BROKEN", "broken_backbone", "noprop-broken-plugin", "1.2"]
    validate = subprocess.run(
        [NOPROP, "validate", "recipes/digits_dt.toml"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )
    # A recipe that does not use the broken plugin is valid; the warning names it and the switch.
    assert validate.returncode == 0, validate.stderr
    assert validate.stderr.strip() == (
        "noprop: warning: plugin 'broken_backbone' of distribution 'noprop-broken-plugin 1.2' is broken: failed to "
        "import broken_backbone: ImportError('needs a missing library'); recipes using it fail "
        "(NOPROP_DISABLE_PLUGIN_AUTOLOAD=1 loads only noprop's own plugins)"
    )


def test_a_plugin_whose_hook_raises_is_marked_broken_and_the_rest_still_load():
    def register(registry):
        raise RuntimeError("cannot register today")

    module = types.ModuleType("raising_plugin")
    register.__name__ = "noprop_register_datasets"
    module.noprop_register_datasets = hookimpl(register)
    registry = load_registry([("raising", module)], autoload=False)
    [broken] = registry.broken
    assert "plugin 'raising'" in broken.message() and "cannot register today" in broken.message()
    assert "digits" in registry.names("dataset")


def test_a_factory_that_cannot_be_called_as_its_kind_says_is_refused_naming_the_plugin():
    plugin = types.ModuleType("needy_plugin")

    @hookimpl
    def noprop_register_schedules(registry):
        registry.add("needy", lambda config, extra: None, config=TinyScheduleConfig)

    plugin.noprop_register_schedules = noprop_register_schedules
    with pytest.raises(
        PluginError,
        match=r"plugin 'needy_plugin' .*: schedule 'needy': factory\(config, extra\) "
        r"cannot be called as \(config\)",
    ):
        load_registry([("needy_plugin", plugin)], autoload=False)


@attrs.frozen(kw_only=True)
class TinyScheduleConfig(ScheduleConfig):
    pass
