"""`noprop eval`: re-evaluate a run's checkpoint, with other inference settings if asked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.cli.progress import make_evaluation_progress
from noprop_core.errors import NopropError

NAME = "eval"
HELP = "re-evaluate a finished run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--steps", type=int, help="inference steps (ct, fm, adjoint; noise levels visited: diffusion_blocks)"
    )
    parser.add_argument("--sampler", help="ancestral, euler or heun (ct); euler or heun (fm); euler (diffusion_blocks)")
    parser.add_argument(
        "--inference-runs",
        type=int,
        metavar="N",
        help="repeat inference N times with independent noise (test and train accuracy)",
    )


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.trained.reevaluation import evaluate_run

    if args.steps is not None and args.steps < 1:
        raise NopropError(f"--steps: expected a number >= 1, got {args.steps}")
    if args.inference_runs is not None and args.inference_runs < 1:
        raise NopropError(f"--inference-runs: expected a number >= 1, got {args.inference_runs}")
    result = evaluate_run(
        args.run_dir,
        context.registry,
        steps=args.steps,
        sampler=args.sampler,
        inference_runs=args.inference_runs,
        notify=lambda text: print(text, file=sys.stderr),
        progress=make_evaluation_progress(context.console),
    )
    how = ", ".join(f"{k} {result[k]}" for k in ("sampler", "steps") if result[k] is not None)
    context.console.print(
        f"{args.run_dir}: test accuracy {result['test_accuracy']:.2f} % ({how}; {result['seconds']:.1f} s)"
    )
    return 0
