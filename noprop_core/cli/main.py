"""The `noprop` command line: run, eval, validate, plugins."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from noprop_core import __version__
from noprop_core.cli.progress import make_progress
from noprop_core.errors import NopropError
from noprop_core.plugin.kinds import KINDS
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import default_recipe_path, dump_recipe, load_recipe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noprop", description="Train networks with NoProp.")
    parser.add_argument("--version", action="version", version=f"noprop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="train and evaluate one recipe")
    run.add_argument("recipe", nargs="?", type=Path, help="recipe file (default: recipes/digits_dt.toml)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    run.add_argument("--out", type=Path, help="run directory (default: runs/<recipe>-<UTC time>/)")
    run.add_argument("--seed", type=int, help="same as --set seed=N")
    run.add_argument("--aim-repo", type=Path, metavar="DIR",
                     help="track in the Aim repository at DIR (same as --set tracker.name=aim --set tracker.repo=DIR)")  # fmt: skip
    run.add_argument("--smoke", action="store_true",
                     help="a few batches and a short evaluation with the recipe's real code; stands in "
                          "synthetic data of the right shape when the data files are absent")  # fmt: skip
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")

    validate = commands.add_parser("validate", help="check recipes without running them")
    validate.add_argument("recipes", nargs="+", type=Path)
    validate.add_argument(
        "--show", action="store_true", help="print each recipe fully resolved (bases and defaults applied)"
    )

    evaluate = commands.add_parser("eval", help="re-evaluate a finished run")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--steps", type=int, help="inference steps (ct, fm, adjoint; per block: diffusion_blocks)")
    evaluate.add_argument("--sampler", help="ancestral, euler or heun (ct); euler or heun (fm, diffusion_blocks)")

    report = commands.add_parser("report", help="compare runs side by side and with the paper's Table 1")
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--markdown", action="store_true", help="print a Markdown table")
    report.add_argument("--plot", type=Path, metavar="DIR", help="also write PNG plots into DIR")

    commands.add_parser("plugins", help="list registered plugins by kind")
    return parser


def _summary(console: Console, run_dir: Path, metrics: dict) -> None:
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


def _command_run(args: argparse.Namespace, registry: Registry, console: Console, started: float) -> int:
    from noprop_core.cli.run import resume, run  # imports torch-heavy modules only when training

    progress = make_progress(console)
    if args.resume is not None:
        options = {"RECIPE": args.recipe, "--set": args.overrides or None, "--out": args.out, "--seed": args.seed,
                   "--smoke": args.smoke or None, "--aim-repo": args.aim_repo}  # fmt: skip
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise NopropError(f"--resume continues a run exactly as it was; it takes no {', '.join(given)}")
        run_dir, metrics = resume(args.resume, registry, progress=progress)
    else:
        overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
        if args.aim_repo is not None:
            overrides += ["tracker.name=aim", f"tracker.repo={json.dumps(str(args.aim_repo.absolute()))}"]
        recipe = args.recipe or default_recipe_path()
        run_dir, metrics = run(recipe, registry, overrides=overrides, out_dir=args.out, progress=progress,
                               started=started, smoke=args.smoke)  # fmt: skip
    _summary(console, run_dir, metrics)
    return 0


def _command_eval(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    from noprop_core.cli.eval import evaluate_run

    registry.raise_if_broken()
    if args.steps is not None and args.steps < 1:
        raise NopropError(f"--steps: expected a number >= 1, got {args.steps}")
    result = evaluate_run(args.run_dir, registry, steps=args.steps, sampler=args.sampler)
    how = ", ".join(f"{k} {result[k]}" for k in ("sampler", "steps") if result[k] is not None)
    console.print(f"{args.run_dir}: test accuracy {result['test_accuracy']:.2f} % ({how}; {result['seconds']:.1f} s)")
    return 0


def _command_validate(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    registry.raise_if_broken()
    failed = False
    for path in args.recipes:
        try:
            recipe = load_recipe(path, registry)
        except NopropError as exc:
            failed = True
            for line in exc.lines():
                print(line, file=sys.stderr)
        else:
            if args.show:
                print(dump_recipe(recipe, registry, header=f"# {path}, resolved"))
            else:
                console.print(f"{path}: ok")
    return 2 if failed else 0


def _command_report(args: argparse.Namespace, console: Console) -> int:
    from noprop_core.cli.report import COLUMNS, SOURCE, load_run, markdown_table

    runs = [load_run(path) for path in args.run_dirs]
    if args.markdown:
        print(markdown_table(runs), end="")
    else:
        table = Table(*COLUMNS, title="noprop report", caption=f"paper %: {SOURCE}; epochs: done/paper's")
        for run in runs:
            table.add_row(*run.row())
        # Off a terminal (logs, pipes) the table keeps its full width instead of wrapping to 80 columns.
        Console(width=None if console.is_terminal else 200, soft_wrap=True).print(table)
    if args.plot is not None:
        from noprop_core.cli.plots import write_plots

        for path in write_plots(runs, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _command_plugins(registry: Registry, console: Console) -> int:
    rows = [
        (kind.name, entry.name, entry.source.distribution, entry.source.version, entry.description)
        for kind in KINDS
        for entry in registry.entries(kind.name)
    ]
    rows += [("BROKEN", b.source.plugin, b.source.distribution, b.source.version, b.reason) for b in registry.broken]
    if not console.is_terminal:  # tab-separated lines for pipes and scripts
        for row in rows:
            print("\t".join(row))
        return 0
    table = Table("kind", "name", "distribution", "version", "description")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = _parser().parse_args(argv)
    console = Console(soft_wrap=True)  # result lines stay whole in logs and pipes
    try:
        registry = load_registry()
        if args.command == "run":
            return _command_run(args, registry, console, started)
        if args.command == "eval":
            return _command_eval(args, registry, console)
        if args.command == "validate":
            return _command_validate(args, registry, console)
        if args.command == "report":
            return _command_report(args, console)
        return _command_plugins(registry, console)
    except NopropError as exc:
        for line in exc.lines():
            print(f"noprop: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("noprop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
