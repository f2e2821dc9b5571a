"""`noprop eval`: re-evaluate a run's checkpoint, with other inference settings if asked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.cli.progress import make_evaluation_progress
from noprop_core.errors import NopropError
from noprop_core.plugin.config import VariantConfig
from noprop_core.plugin.registry import Registry

NAME = "eval"
HELP = "re-evaluate a finished run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--steps", type=int, help="inference steps, for variants that have them to change")
    parser.add_argument("--sampler", help="another sampler of the run's variant")
    parser.add_argument(
        "--inference-runs",
        type=int,
        metavar="N",
        help="repeat inference N times with independent noise (test and train accuracy)",
    )


def plugin_help(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """--steps' and --sampler's help from what each variant's config declares (``inference()``)."""
    steps, samplers = [], []
    for entry in registry.entries("variant"):
        try:
            config = entry.config(name=entry.name)
        except Exception:  # noqa: BLE001 - a third-party config without defaults: not listed
            continue
        if not isinstance(config, VariantConfig):
            continue
        inference = config.inference()
        if inference.steps_key is not None:
            steps.append(entry.name)
        if inference.samplers:
            samplers.append(f"{' or '.join(inference.samplers)} ({entry.name})")
    options = {action.dest: action for action in parser._actions}
    options["steps"].help = f"inference steps, for {', '.join(steps)}" if steps else options["steps"].help
    options["sampler"].help = "; ".join(samplers) or options["sampler"].help


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
