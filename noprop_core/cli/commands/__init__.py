"""The commands of `noprop`, one module each: ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``execute(args, context) -> exit status``. A new command is a new module listed here; the
parser, the top-level help and the dispatch are made from this list."""

from __future__ import annotations

from noprop_core.cli.commands import evaluate, export, plugins, predict, recipes, report, run, sweep, validate

COMMANDS = (run, sweep, validate, evaluate, report, predict, export, plugins, recipes)
