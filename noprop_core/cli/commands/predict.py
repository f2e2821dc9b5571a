"""`noprop predict`: classify image files with a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from noprop_core.cli.context import Context
from noprop_core.errors import NopropError

NAME = "predict"
HELP = "classify PNG or JPEG images with a trained run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="the K most probable classes per image")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per image")


def execute(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.cli.predict import dump_json, image_paths, prediction_lines, predictions
    from noprop_core.engine.trained.inference import load_model

    if args.top_k < 1:
        raise NopropError(f"--top-k: expected a number >= 1, got {args.top_k}")
    paths = image_paths(args.images)
    results = predictions(load_model(args.run_dir, context.registry), paths, args.top_k)
    print(dump_json(results) if args.json else "\n".join(prediction_lines(results)))
    return 0
