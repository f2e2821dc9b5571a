"""The `noprop` command line: run, validate, eval, report, predict, export, plugins, recipes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from noprop_core import __version__
from noprop_core.cli.progress import make_evaluation_progress, make_progress
from noprop_core.errors import NopropError, RunInterrupted
from noprop_core.plugin.kinds import KINDS
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.registry import Registry
from noprop_core.recipe.loading import dump_recipe, load_recipe
from noprop_core.recipe.shipped import resolve_recipe_path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noprop", description="Train networks with NoProp.")
    parser.add_argument("--version", action="version", version=f"noprop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="train and evaluate one recipe")
    run.add_argument("recipe", nargs="?", type=Path,
                     help="recipe file, or a shipped recipe's name (`noprop recipes`; default: digits_dt)")  # fmt: skip
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    run.add_argument("--out", type=Path, help="run directory (default: runs/<recipe>-<UTC time>/)")
    run.add_argument("--seed", type=int, help="one model with this seed (same as --set seed=N --set seeds=[])")
    run.add_argument("--seeds", type=int, nargs="+", metavar="N",
                     help="the paper's protocol: one model per seed into OUT/seed-<N>/, then OUT/protocol.json "
                          "(also the recipe key seeds = [...])")  # fmt: skip
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="with several seeds: train N at a time in child processes (default 1: one after another)")  # fmt: skip
    run.add_argument("--stack-seeds", choices=("auto", "on", "off"), default="auto",
                     help="with several seeds and a fused update: train them as one stacked computation "
                          "(auto: on a GPU)")  # fmt: skip
    run.add_argument("--group", help=argparse.SUPPRESS)  # a seed group's name, set for its child processes
    run.add_argument("--aim-repo", type=Path, metavar="DIR",
                     help="track in the Aim repository at DIR (same as --set tracker.name=aim --set tracker.repo=DIR)")  # fmt: skip
    run.add_argument("--smoke", action="store_true",
                     help="a few batches and a short evaluation with the recipe's real code; stands in "
                          "synthetic data of the right shape when the data files are absent")  # fmt: skip
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")

    validate = commands.add_parser("validate", help="check recipes without running them")
    validate.add_argument("recipes", nargs="+", type=Path, metavar="RECIPE", help="recipe file or shipped recipe name")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a recipe key before validating (repeatable)")  # fmt: skip
    validate.add_argument(
        "--show", action="store_true", help="print each recipe fully resolved (bases and defaults applied)"
    )

    evaluate = commands.add_parser("eval", help="re-evaluate a finished run")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument(
        "--steps", type=int, help="inference steps (ct, fm, adjoint; noise levels visited: diffusion_blocks)"
    )
    evaluate.add_argument(
        "--sampler", help="ancestral, euler or heun (ct); euler or heun (fm); euler (diffusion_blocks)"
    )
    evaluate.add_argument("--inference-runs", type=int, metavar="N",
                          help="repeat inference N times with independent noise (test and train accuracy)")  # fmt: skip

    report = commands.add_parser("report", help="compare runs side by side and with the paper's Table 1")
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--markdown", action="store_true", help="print a Markdown table")
    report.add_argument("--plot", type=Path, metavar="DIR", help="also write PNG plots into DIR")

    predict = commands.add_parser("predict", help="classify PNG or JPEG images with a trained run")
    predict.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER")
    predict.add_argument("--top-k", type=int, default=1, metavar="K", help="the K most probable classes per image")
    predict.add_argument("--json", action="store_true", help="print a JSON list, one object per image")

    export = commands.add_parser("export", help="write a trained run's model for use without noprop")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    export.add_argument("--format", choices=("safetensors", "onnx", "torchscript"), default="safetensors",
                        help="safetensors: weights only; onnx, torchscript: the whole inference chain, its "
                             "noise an input")  # fmt: skip
    export.add_argument("--steps", type=int, help="inference steps baked into the graph (ct, fm, adjoint)")
    export.add_argument("--out", type=Path, help="output file (default: RUN_DIR/model.<format>)")

    commands.add_parser("plugins", help="list registered plugins by kind (exit 1 if one is broken)")
    commands.add_parser("recipes", help="list the shipped recipes with the paper's accuracy for each")
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
    from noprop_core.engine.api import SeedGroup, train  # imports torch-heavy modules only when training
    from noprop_core.engine.session import resume

    if args.resume is not None:
        options = {"RECIPE": args.recipe, "--out": args.out, "--seed": args.seed,
                   "--seeds": args.seeds, "--smoke": args.smoke or None, "--aim-repo": args.aim_repo}  # fmt: skip
        given = [flag for flag, value in options.items() if value is not None]
        if given:
            raise NopropError(f"--resume continues one run; it takes no {', '.join(given)} (to continue a seed "
                              "group, run its command again: finished seeds are kept)")  # fmt: skip
        run_dir, metrics = resume(args.resume, registry, overrides=args.overrides, progress=make_progress(console))
        if metrics is None:
            console.print(f"{run_dir}: finished; nothing to do (train it further with --set train.epochs=N)")
            return 0
        _summary(console, run_dir, metrics)
        return 0
    if args.seed is not None and args.seeds is not None:
        raise NopropError("--seed, --seeds: give one (--seed N trains one model, --seeds N [N ...] one per seed)")
    overrides = list(args.overrides) + (["seeds=[]", f"seed={args.seed}"] if args.seed is not None else [])
    if args.aim_repo is not None:
        overrides += ["tracker.name=aim", f"tracker.repo={json.dumps(str(args.aim_repo.absolute()))}"]
    result = train(args.recipe, overrides=overrides, out=args.out, seeds=args.seeds, registry=registry,
                   progress=lambda: make_progress(console), jobs=args.jobs, stack_seeds=args.stack_seeds,
                   smoke=args.smoke, group=args.group, started=started)  # fmt: skip
    if isinstance(result, SeedGroup):
        _protocol_summary(console, result.out, result.protocol)
    else:
        _summary(console, result.run_dir, result.metrics)
    return 0


def _protocol_summary(console: Console, out: Path, protocol: dict) -> None:
    table = Table("seed", "test %", "train %", "epochs", "wall", title=f"noprop run — {protocol['recipe']}, "
                  f"{len(protocol['seeds'])} seeds × {protocol['inference_runs']} inference runs")  # fmt: skip
    for entry in protocol["runs"]:
        table.add_row(str(entry["seed"]), _mean_text(entry["test_accuracy_runs"]),
                      _mean_text(entry["train_accuracy_runs"]), str(entry["epochs_completed"]),
                      f"{entry['wall_seconds']:.0f} s")  # fmt: skip
    test, train = protocol["test_accuracy"], protocol["train_accuracy"]
    table.add_row("all", f"{_spread_text(test)} (n = {test['n']})", f"{_spread_text(train)} (n = {train['n']})",
                  "", f"{protocol['wall_seconds']:.0f} s")  # fmt: skip
    paper = protocol.get("paper")
    if paper:
        verdict = {True: "within the combined spread", False: "outside the combined spread", None: ""}
        table.caption = (f"paper (Table 1): test {_spread_text(paper['test_accuracy'])}, train "
                         f"{_spread_text(paper['train_accuracy'])}; {verdict[paper['test_within_spread']]}")  # fmt: skip
    console.print(table)
    console.print(f"protocol: {out / 'protocol.json'}")


def _spread_text(value: dict) -> str:
    from noprop_core.engine.protocol import Spread

    return Spread(value["mean"], value["standard_error"], value.get("n", 0)).text()


def _mean_text(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}"


def _command_eval(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    from noprop_core.engine.reevaluation import evaluate_run

    if args.steps is not None and args.steps < 1:
        raise NopropError(f"--steps: expected a number >= 1, got {args.steps}")
    if args.inference_runs is not None and args.inference_runs < 1:
        raise NopropError(f"--inference-runs: expected a number >= 1, got {args.inference_runs}")
    result = evaluate_run(args.run_dir, registry, steps=args.steps, sampler=args.sampler,
                          inference_runs=args.inference_runs, notify=lambda text: print(text, file=sys.stderr),
                          progress=make_evaluation_progress(console))  # fmt: skip
    how = ", ".join(f"{k} {result[k]}" for k in ("sampler", "steps") if result[k] is not None)
    console.print(f"{args.run_dir}: test accuracy {result['test_accuracy']:.2f} % ({how}; {result['seconds']:.1f} s)")
    return 0


def _command_validate(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    failed = False
    for path in args.recipes:
        try:
            recipe = load_recipe(resolve_recipe_path(path), registry, args.overrides)
        except NopropError as exc:
            failed = True
            for line in exc.lines():
                print(f"noprop: error: {line}", file=sys.stderr)
        else:
            if args.show:
                print(dump_recipe(recipe, registry, header=f"# {path}, resolved"))
            else:
                console.print(f"{path}: ok")
    return 2 if failed else 0


def _command_report(args: argparse.Namespace, console: Console) -> int:
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
        wide = Console(width=None if console.is_terminal else 240, soft_wrap=True)
        wide.print(table)
        for index, note in enumerate(footnotes, 1):
            wide.print(f"[{index}] {note}", markup=False)
    if args.plot is not None:
        from noprop_core.engine.plots import write_plots

        for path in write_plots(runs, args.plot, rows):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _command_predict(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    from noprop_core.cli.predict import dump_json, image_paths, prediction_lines, predictions
    from noprop_core.engine.inference import load_model

    if args.top_k < 1:
        raise NopropError(f"--top-k: expected a number >= 1, got {args.top_k}")
    paths = image_paths(args.images)
    results = predictions(load_model(args.run_dir, registry), paths, args.top_k)
    print(dump_json(results) if args.json else "\n".join(prediction_lines(results)))
    return 0


def _command_export(args: argparse.Namespace, registry: Registry, console: Console) -> int:
    from noprop_core.engine.export import export
    from noprop_core.engine.inference import load_model

    if args.steps is not None and args.steps < 1:
        raise NopropError(f"--steps: expected a number >= 1, got {args.steps}")
    model = load_model(args.run_dir, registry, steps=args.steps)
    out = args.out or args.run_dir / f"model.{ {'torchscript': 'pt'}.get(args.format, args.format) }"
    written = export(model, args.format, out)
    size = f"{written['bytes'] / 2**20:.1f} MiB"
    if "noise_shape" in written:
        draws, _, dim = written["noise_shape"]
        console.print(f"{out}: {size}; inputs: images (batch, {', '.join(map(str, model.image_shape))}) in [0, 1] "
                      f"and noise ({draws}, batch, {dim}) ~ N(0, I); output: class probabilities")  # fmt: skip
    else:
        console.print(f"{out}: {size} (weights only; metadata: the resolved recipe and the input standardisation)")
    return 0


def _command_plugins(registry: Registry, console: Console) -> int:
    rows = [
        (kind.name, entry.name, entry.source.distribution, entry.source.version, entry.description)
        for kind in KINDS
        for entry in registry.entries(kind.name)
    ]
    rows += [("BROKEN", b.source.plugin, b.source.distribution, b.source.version, b.reason) for b in registry.broken]
    header = ("kind", "name", "distribution", "version", "description")
    status = 1 if registry.broken else 0  # scripts and CI can tell that an installed plugin does not load
    if not console.is_terminal:  # tab-separated lines for pipes and scripts, under a header line
        for row in (header, *rows):
            print("\t".join(row))
        return status
    table = Table(*header, title="noprop plugins")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return status


def _command_recipes(registry: Registry, console: Console) -> int:
    from noprop_core.engine.paper import paper_reference
    from noprop_core.recipe.loading import recipe_to_dict
    from noprop_core.recipe.shipped import shipped_dir, shipped_names

    header = ("recipe", "data", "variant", "embedding", "backbone", "epochs", "paper test %")
    rows = []
    for name in shipped_names():
        recipe = load_recipe(shipped_dir() / f"{name}.toml", registry)
        reference = paper_reference(recipe_to_dict(recipe, registry))
        paper = reference.values if reference else None
        rows.append((name, recipe.data.display_name(), recipe.variant.name, recipe.model.embedding.display_name(),
                     recipe.model.backbone.name, str(recipe.train.epochs),
                     f"{paper.test:.2f} ± {paper.test_se:.2f}" if paper else ""))  # fmt: skip
    if not console.is_terminal:
        for row in (header, *rows):
            print("\t".join(row))
        return 0
    table = Table(*header, title=f"shipped recipes ({shipped_dir()}); run one with: noprop run NAME",
                  caption="paper: Li, Teh & Pascanu 2025, Table 1 (mean ± standard error)")  # fmt: skip
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
        if args.command != "plugins":
            registry.warn_if_broken(lambda text: print(text, file=sys.stderr))
        if args.command == "recipes":
            return _command_recipes(registry, console)
        if args.command == "predict":
            return _command_predict(args, registry, console)
        if args.command == "export":
            return _command_export(args, registry, console)
        if args.command == "run":
            return _command_run(args, registry, console, started)
        if args.command == "eval":
            return _command_eval(args, registry, console)
        if args.command == "validate":
            return _command_validate(args, registry, console)
        if args.command == "report":
            return _command_report(args, console)
        return _command_plugins(registry, console)
    except RunInterrupted as exc:  # a requested stop is not an error
        print(f"noprop: stopped: {exc}", file=sys.stderr)
        return exc.exit_code
    except NopropError as exc:
        for line in exc.lines():
            print(f"noprop: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("noprop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's input: one line, the traceback in a file
        log = save_traceback(exc)
        message = " ".join(str(exc).split())[:200]
        print(f"noprop: internal error: {type(exc).__name__}: {message} (full traceback: {log}; please report it)",
              file=sys.stderr)  # fmt: skip
        return 1


def save_traceback(exc: BaseException) -> Path:
    """The traceback of an internal error, in a per-user folder (the run folder may be gone)."""
    import os
    import tempfile
    import traceback

    folder = Path(tempfile.gettempdir()) / f"noprop-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"error-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


if __name__ == "__main__":
    sys.exit(main())
