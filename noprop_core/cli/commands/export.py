"""`noprop export`: a trained run's model as safetensors, ONNX or TorchScript."""

from __future__ import annotations

import argparse
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.errors import NopropError

NAME = "export"
HELP = "write a trained run's model for use without noprop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--format",
        choices=("safetensors", "onnx", "torchscript"),
        default="safetensors",
        help="safetensors: weights only; onnx, torchscript: the whole inference chain, its noise an input",
    )
    parser.add_argument("--steps", type=int, help="inference steps baked into the graph (ct, fm, adjoint)")
    parser.add_argument("--out", type=Path, help="output file (default: RUN_DIR/model.<format>)")


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.trained.export import export
    from noprop_core.engine.trained.inference import load_model

    if args.steps is not None and args.steps < 1:
        raise NopropError(f"--steps: expected a number >= 1, got {args.steps}")
    model = load_model(args.run_dir, context.registry, steps=args.steps)
    out = args.out or args.run_dir / f"model.{ {'torchscript': 'pt'}.get(args.format, args.format) }"
    written = export(model, args.format, out)
    size = f"{written['bytes'] / 2**20:.1f} MiB"
    if "noise_shape" in written:
        draws, _, dim = written["noise_shape"]
        context.console.print(
            f"{out}: {size}; inputs: images (batch, {', '.join(map(str, model.image_shape))}) in [0, 1] "
            f"and noise ({draws}, batch, {dim}) ~ N(0, I); output: class probabilities"
        )
    else:
        context.console.print(
            f"{out}: {size} (weights only; metadata: the resolved recipe and the input standardisation)"
        )
    return 0
