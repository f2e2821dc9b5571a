"""`noprop recipes`: the shipped recipes, with the paper's accuracy for each."""

from __future__ import annotations

import argparse

from rich.table import Table

from noprop_core.cli.context import Context
from noprop_core.recipe.loading import load_recipe

NAME = "recipes"
HELP = "list the shipped recipes with the paper's accuracy for each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.report.paper import paper_reference
    from noprop_core.recipe.shipped import shipped_dir, shipped_names

    header = ("recipe", "data", "variant", "embedding", "backbone", "epochs", "paper test %")
    rows = []
    for name in shipped_names():
        recipe = load_recipe(shipped_dir() / f"{name}.toml", context.registry)
        reference = paper_reference(recipe)
        paper = reference.values if reference else None
        rows.append(
            (
                name,
                recipe.data.display_name(),
                recipe.variant.name,
                recipe.model.embedding.display_name(),
                recipe.model.backbone.name,
                str(recipe.train.epochs),
                f"{paper.test:.2f} ± {paper.test_se:.2f}" if paper else "",
            )
        )
    if not context.console.is_terminal:
        for row in (header, *rows):
            print("\t".join(row))
        return 0
    table = Table(
        *header,
        title=f"shipped recipes ({shipped_dir()}); run one with: noprop run NAME",
        caption="paper: Li, Teh & Pascanu 2025, Table 1 (mean ± standard error)",
    )
    for row in rows:
        table.add_row(*row)
    context.console.print(table)
    return 0
