"""`noprop run`: train a recipe (one seed or a seed group), or resume a run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from noprop_core.cli.context import Context
from noprop_core.cli.launcher_options import add_launcher_arguments, launcher_from_arguments
from noprop_core.cli.progress import make_progress
from noprop_core.errors import NopropError
from noprop_core.plugin.launcher import Launcher
from noprop_core.recipe.loading import one_seed
from noprop_core.speed.section import STACK_SEEDS

NAME = "run"
HELP = "train and evaluate one recipe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_what_to_train(parser)
    _add_seed_group_options(parser)
    parser.add_argument("--group", help=argparse.SUPPRESS)  # a seed group's name, set for its child processes
    parser.add_argument(
        "--aim-repo",
        type=Path,
        metavar="DIR",
        help="track in the Aim repository at DIR (same as --set tracker.name=aim --set tracker.repo=DIR)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few batches and a short evaluation with the recipe's real code; stands in "
        "synthetic data of the right shape when the data files are absent",
    )
    parser.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint"
    )


def _add_what_to_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipes",
        nargs="*",
        type=Path,
        metavar="RECIPE",
        help="recipe file, or a shipped recipe's name (`noprop recipes`; default: digits_dt); "
        "several, with --seeds: one seed group each, OUT/<recipe>/, as the jobs of one launch",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<recipe>-<UTC time>/)")
    parser.add_argument("--seed", type=int, help="one model with this seed (same as --set seed=N --set seeds=[])")


def _add_seed_group_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="N",
        help="the paper's protocol: one model per seed into OUT/seed-<N>/, then OUT/protocol.json "
        "(also the recipe key seeds = [...])",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="with several seeds: train N at a time in child processes (default 1: one after another; "
        "the same as --launcher local --launcher-set workers=N)",
    )
    add_launcher_arguments(parser, "with several seeds: each seed a job of this launcher")
    parser.add_argument(
        "--stack-seeds",
        choices=STACK_SEEDS,
        default="auto",
        help="with several seeds and a fused update: train them as one stacked computation (auto: on a GPU)",
    )


def execute(args: argparse.Namespace, context: Context) -> int:
    args.recipe = args.recipes[0] if len(args.recipes) == 1 else None
    if len(args.recipes) > 1:
        return _several_recipes(args, context)
    launcher = launcher_from_arguments(args, context)
    if args.resume is not None:
        return _resume(args, context)
    if launcher is not None and args.seeds is None:
        raise NopropError(
            "--launcher: sends a seed group's seeds as jobs; give --seeds N [N ...] (one seed: --seeds N)"
        )
    if args.seed is not None and args.seeds is not None:
        raise NopropError("--seed, --seeds: give one (--seed N trains one model, --seeds N [N ...] one per seed)")
    return _train(args, context, launcher)


def _train(args: argparse.Namespace, context: Context, launcher: Launcher | None) -> int:
    from noprop_core.engine.api import SeedGroup, train  # imports torch-heavy modules only when training

    overrides = list(args.overrides) + (one_seed(args.seed) if args.seed is not None else [])
    if args.aim_repo is not None:
        overrides += ["tracker.name=aim", f"tracker.repo={json.dumps(str(args.aim_repo.absolute()))}"]
    result = train(
        args.recipe,
        overrides=overrides,
        out=args.out,
        seeds=args.seeds,
        registry=context.registry,
        progress=lambda: make_progress(context.console),
        jobs=args.jobs,
        stack_seeds=args.stack_seeds,
        smoke=args.smoke,
        group=args.group,
        started=context.started,
        launcher=launcher,
    )
    if isinstance(result, SeedGroup):
        _protocol_summary(context.console, result.out, result.protocol)
    else:
        _summary(context.console, result.run_dir, result.final_metrics or result.metrics)  # this rank's own
    return 0


def _resume(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.runs.resume import resume_run
    from noprop_core.engine.sweep.driver import refuse_trial_outside_its_sweep

    options = {
        "RECIPE": args.recipe,
        "--launcher": args.launcher,
        "--out": args.out,
        "--seed": args.seed,
        "--seeds": args.seeds,
        "--smoke": args.smoke or None,
        "--aim-repo": args.aim_repo,
    }
    given = [flag for flag, value in options.items() if value is not None]
    if given:
        raise NopropError(
            f"--resume continues one run; it takes no {', '.join(given)} (to continue a seed "
            "group, run its command again: finished seeds are kept)"
        )
    refuse_trial_outside_its_sweep(args.resume)
    progress = make_progress(context.console)
    run_dir, metrics = resume_run(args.resume, context.registry, overrides=args.overrides, progress=progress)
    if metrics is None:
        context.console.print(f"{run_dir}: finished; nothing to do (train it further with --set train.epochs=N)")
        return 0
    _summary(context.console, run_dir, metrics)
    return 0


def _several_recipes(args: argparse.Namespace, context: Context) -> int:
    from noprop_core.engine.api import train_groups

    given = {"--seeds": args.seeds, "--out": args.out}
    missing = [flag for flag, value in given.items() if value is None]
    if missing or args.resume is not None or args.seed is not None or args.smoke:
        raise NopropError(
            f"{len(args.recipes)} recipes: give them --seeds N [N ...] and --out DIR (one seed group "
            "each, DIR/<recipe>/), and no --resume, --seed or --smoke"
        )
    launcher = launcher_from_arguments(args, context)
    groups = train_groups(
        args.recipes,
        seeds=args.seeds,
        out=args.out,
        launcher=launcher,
        overrides=args.overrides,
        registry=context.registry,
    )
    for group in groups:
        _protocol_summary(context.console, group.out, group.protocol)
    return 0


def _summary(console: Console, run_dir: Path, metrics: dict[str, Any]) -> None:
    table = Table(title=f"noprop run — {metrics['recipe']}", show_header=False)
    rows = [
        ("variant / dataset", f"{metrics['variant']} / {metrics['dataset']}"),
        ("epochs", str(metrics["epochs_completed"])),
        *(
            [("data", "STAND-IN: synthetic FakeData, the real files were absent")]
            if metrics.get("data_stand_in")
            else []
        ),
        ("test accuracy", f"{metrics['test_accuracy']:.2f} %"),
        ("train accuracy", f"{metrics['train_accuracy']:.2f} % (first {metrics['train_accuracy_examples']} examples)"),
        ("wall time", f"{metrics['wall_seconds']:.1f} s"),
        ("training throughput", f"{metrics['train_examples_per_second']:.0f} examples/s"),
        ("peak memory", f"{metrics['peak_memory_bytes'] / 2**20:.0f} MiB ({metrics['device']})"),
        ("CPU threads", f"{metrics['threads']} ({metrics['threads_reason']})"),
        ("run directory", str(run_dir)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _protocol_summary(console: Console, out: Path, protocol: dict[str, Any]) -> None:
    table = Table(
        "seed",
        "test %",
        "train %",
        "epochs",
        "wall",
        title=f"noprop run — {protocol['recipe']}, "
        f"{len(protocol['seeds'])} seeds × {protocol['inference_runs']} inference runs",
    )
    for entry in protocol["runs"]:
        table.add_row(
            str(entry["seed"]),
            _mean_text(entry["test_accuracy_runs"]),
            _mean_text(entry["train_accuracy_runs"]),
            str(entry["epochs_completed"]),
            f"{entry['wall_seconds']:.0f} s",
        )
    test, train = protocol["test_accuracy"], protocol["train_accuracy"]
    table.add_row(
        "all",
        f"{_spread_text(test)} (n = {test['n']})",
        f"{_spread_text(train)} (n = {train['n']})",
        "",
        f"{protocol['wall_seconds']:.0f} s",
    )
    paper = protocol.get("paper")
    if paper:
        verdict = {True: "within the combined spread", False: "outside the combined spread", None: ""}
        table.caption = (
            f"paper (Table 1): test {_spread_text(paper['test_accuracy'])}, train "
            f"{_spread_text(paper['train_accuracy'])}; {verdict[paper['test_within_spread']]}"
        )
    console.print(table)
    console.print(f"protocol: {out / 'protocol.json'}")


def _spread_text(value: dict[str, Any]) -> str:
    from noprop_core.engine.protocol import Spread

    return Spread(value["mean"], value["standard_error"], value.get("n", 0)).text()


def _mean_text(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}"
