"""`noprop sweep`: a hyper-parameter search over a recipe's keys (Optuna), each trial a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.cli.launcher_options import add_launcher_arguments, launcher_from_arguments

NAME = "sweep"
HELP = "search a recipe's hyper-parameters (Optuna); each trial is a run folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", type=Path, metavar="SWEEP", help="sweep file (TOML; see docs/sweeps.md)")
    parser.add_argument("--out", type=Path, help="sweep folder (default: runs/sweep-<name>/); run again to continue")
    add_launcher_arguments(
        parser,
        "run the trials in workers of this launcher (default: the sweep file's [launcher], else in this process)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of a launcher's workers


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.cli.progress import make_progress
    from noprop_core.engine.sweep.driver import run_sweep

    if not args.sweep.is_file():
        from noprop_core.errors import NopropError

        raise NopropError(f"{args.sweep}: no such sweep file")
    result = run_sweep(
        args.sweep,
        context.registry,
        out=args.out,
        notify=lambda text: print(text, file=sys.stderr),
        progress=lambda: make_progress(context.console),
        worker=args.worker,
        launcher=launcher_from_arguments(args, context),
    )
    if args.worker:
        return 0
    best = result.summary["best"]
    states = ", ".join(f"{count} {state}" for state, count in result.summary["states"].items() if count)
    context.console.print(f"{result.out}: {len(result.summary['trials'])} trials ({states})")
    if best is not None:
        params = ", ".join(f"{key} = {value}" for key, value in best["params"].items())
        context.console.print(
            f"best: trial {best['number']} ({params}): {result.summary['objective']} "
            f"{best['objective']:.2f} %, test accuracy {best['test_accuracy']:.2f} % "
            f"(measured once, at the end); recipe: {result.out / 'best.toml'}"
        )
    return 0
