"""`noprop report`: runs side by side, with the paper's numbers, and their plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from noprop_core.cli.context import Context

NAME = "report"
HELP = "compare runs side by side and with the paper's Table 1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="also write PNG plots into DIR")


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.report import CAPTION, COLUMNS, group_rows, load_runs, markdown_table, table_rows

    runs = load_runs(args.run_dirs, warn=lambda text: print(text, file=sys.stderr))
    rows = group_rows(runs)
    if args.markdown:
        print(markdown_table(rows), end="")
    else:
        cells, footnotes = table_rows(rows)
        table = Table(*COLUMNS, title="noprop report", caption=CAPTION)
        for row in cells:
            table.add_row(*row)
        # Off a terminal (logs, pipes) the table keeps its full width instead of wrapping to 80 columns.
        wide = Console(width=None if context.console.is_terminal else 240, soft_wrap=True)
        wide.print(table)
        for index, note in enumerate(footnotes, 1):
            wide.print(f"[{index}] {note}", markup=False)
    if args.plot is not None:
        from noprop_core.engine.plots import write_plots

        for path in write_plots(runs, args.plot, rows):
            print(f"wrote {path}", file=sys.stderr)
    return 0
