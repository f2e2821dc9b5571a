"""`noprop report`: runs side by side, with the paper's numbers, and their plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from noprop_core.cli.context import Context
from noprop_core.errors import NopropError

NAME = "report"
HELP = "compare runs side by side and with the paper's Table 1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="also write PNG plots into DIR")


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.report.table import CAPTION, COLUMNS, group_rows, load_runs, markdown_table, table_rows
    from noprop_core.engine.sweep.report import is_sweep

    if any(is_sweep(path) for path in args.run_dirs):
        if len(args.run_dirs) > 1:
            raise NopropError("report: a sweep folder is reported on its own (its trials are its rows)")
        return _report_sweep(args.run_dirs[0], context, args.markdown)

    runs = load_runs(args.run_dirs, warn=lambda text: print(text, file=sys.stderr), registry=context.registry)
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
        from noprop_core.engine.report.plots import write_plots

        for path in write_plots(runs, args.plot, rows):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _report_sweep(out: Path, context: Context, markdown: bool) -> int:
    from noprop_core.engine.sweep.report import COLUMNS, load_summary, trial_rows, write_sweep_plot

    summary = load_summary(out)
    rows = trial_rows(summary)
    title = f"noprop sweep {out}: {summary['method']}, maximising {summary['objective']}"
    if markdown:
        print(
            "\n".join(
                [
                    f"**{title}**",
                    "",
                    "| " + " | ".join(COLUMNS) + " |",
                    "|" + "---|" * len(COLUMNS),
                    *("| " + " | ".join(row) + " |" for row in rows),
                ]
            )
        )
    else:
        table = Table(*COLUMNS, title=title)
        for row in rows:
            table.add_row(*row)
        Console(width=None if context.console.is_terminal else 240, soft_wrap=True).print(table)
    best = summary.get("best")
    if best is not None:
        print(f"best: trial {best['number']}, test accuracy {best['test_accuracy']:.2f} % (measured once, at the end)")
    print(f"wrote {write_sweep_plot(summary, out / 'sweep.png')}", file=sys.stderr)
    return 0
