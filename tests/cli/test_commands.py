"""One module per command: the parser, the top-level help and the dispatch come from the list in
``noprop_core.cli.commands``; a closed pipe ends a listing quietly."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import NOPROP
from noprop_core.cli.commands import COMMANDS
from noprop_core.cli.main import _parser
from noprop_core.plugin.manager import load_registry


def test_every_command_module_declares_itself_and_the_help_lists_them_all():
    names = [command.NAME for command in COMMANDS]
    folder = Path(COMMANDS[0].__file__).parent
    modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
    assert {command.__name__.rsplit(".", 1)[1] for command in COMMANDS} == modules  # every module is listed
    assert len(set(names)) == len(names) and names[0] == "run"
    for command in COMMANDS:
        assert command.HELP and callable(command.add_arguments) and callable(command.execute)
    parser = _parser(load_registry(autoload=False))
    help_text = " ".join(parser.format_help().split())  # argparse wraps long lines
    for command in COMMANDS:
        assert command.NAME in help_text and command.HELP in help_text


def test_help_for_plugin_specific_options_comes_from_the_plugins():
    """`noprop eval --sampler`: each variant's samplers as its config declares them, no list in the core."""
    registry = load_registry(autoload=False)
    text = " ".join(subcommand_help(_parser(registry), "eval").split())
    for entry in registry.entries("variant"):
        inference = entry.config(name=entry.name).inference()
        if inference.samplers:
            assert f"{' or '.join(inference.samplers)} ({entry.name})" in text
        if inference.steps_key is not None:
            assert entry.name in text.split("inference steps, for", 1)[1].split("--")[0]


def subcommand_help(parser, name: str) -> str:
    import argparse

    [subparsers] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return subparsers.choices[name].format_help()


def test_a_listing_into_a_closed_pipe_ends_quietly():
    # `true` has gone before noprop (a second to start) writes: every write meets a closed pipe.
    result = subprocess.run(
        ["bash", "-c", f"{NOPROP} recipes | true; exit ${{PIPESTATUS[0]}}"], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stderr) == (0, "")
