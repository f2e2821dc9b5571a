"""`noprop validate`: check recipes without running them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.errors import NopropError
from noprop_core.recipe.loading import dump_recipe, load_recipe
from noprop_core.recipe.shipped import resolve_recipe_path

NAME = "validate"
HELP = "check recipes without running them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipes", nargs="+", type=Path, metavar="RECIPE", help="recipe file or shipped recipe name")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key before validating (repeatable)",
    )
    parser.add_argument(
        "--show", action="store_true", help="print each recipe fully resolved (bases and defaults applied)"
    )


def execute(args: argparse.Namespace, context: Context) -> int:
    failed = False
    for path in args.recipes:
        try:
            recipe = load_recipe(resolve_recipe_path(path), context.registry, args.overrides)
        except NopropError as exc:
            failed = True
            for line in exc.lines():
                print(f"noprop: error: {line}", file=sys.stderr)
        else:
            if args.show:
                print(dump_recipe(recipe, context.registry, header=f"# {path}, resolved"))
            else:
                context.console.print(f"{path}: ok")
    return 2 if failed else 0
