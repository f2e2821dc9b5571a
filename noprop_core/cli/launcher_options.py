"""``--launcher NAME|FILE`` and ``--launcher-set KEY=VALUE``: where a command's jobs run."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from noprop_core.cli.context import Context

if TYPE_CHECKING:
    from noprop_core.plugin.launcher import Launcher


def add_launcher_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--launcher",
        metavar="NAME|FILE",
        help=f"{what}: a launcher's name (`noprop plugins`: local, slurm) or a TOML file holding "
        "a [launcher] table (docs/cluster.md)",
    )
    parser.add_argument(
        "--launcher-set",
        dest="launcher_sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a key of the launcher, e.g. --launcher-set partition=gpu (repeatable)",
    )


def launcher_from_arguments(args: argparse.Namespace, context: Context) -> Launcher | None:
    """The launcher the options name, or None when they name none."""
    if args.launcher is None and not args.launcher_sets:
        return None
    from noprop_core.recipe.launcher import launcher_from_options

    return launcher_from_options(args.launcher, args.launcher_sets, context.registry)
