"""`noprop plugins`: every registered plugin by kind (exit 1 if one is broken)."""

from __future__ import annotations

import argparse

from rich.table import Table

from noprop_core.cli.context import Context
from noprop_core.plugin.kinds import KINDS

NAME = "plugins"
HELP = "list registered plugins by kind (exit 1 if one is broken)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def execute(args: argparse.Namespace, context: Context) -> int:
    rows = [
        (kind.name, entry.name, entry.source.distribution, entry.source.version, entry.description)
        for kind in KINDS
        for entry in context.registry.entries(kind.name)
    ]
    rows += [
        ("BROKEN", b.source.plugin, b.source.distribution, b.source.version, b.reason) for b in context.registry.broken
    ]
    header = ("kind", "name", "distribution", "version", "description")
    status = 1 if context.registry.broken else 0  # scripts and CI can tell that an installed plugin does not load
    if not context.console.is_terminal:  # tab-separated lines for pipes and scripts, under a header line
        for row in (header, *rows):
            print("\t".join(row))
        return status
    table = Table(*header, title="noprop plugins")
    for row in rows:
        table.add_row(*row)
    context.console.print(table)
    return status
