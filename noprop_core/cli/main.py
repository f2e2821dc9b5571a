"""The `noprop` command line: the parser and the dispatch, made from the command modules in
``noprop_core.cli.commands``; errors become one line each and an exit status."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from noprop_core import __version__
from noprop_core.cli.commands import COMMANDS
from noprop_core.cli.context import Context
from noprop_core.errors import NopropError, RunInterrupted
from noprop_core.plugin.manager import load_registry
from noprop_core.plugin.registry import Registry

BY_NAME = {command.NAME: command for command in COMMANDS}


def _parser(registry: Registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noprop", description="Train networks with NoProp.")
    parser.add_argument("--version", action="version", version=f"noprop {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title=f"commands ({', '.join(BY_NAME)})"
    )
    for command in COMMANDS:
        subparser = commands.add_parser(command.NAME, help=command.HELP)
        command.add_arguments(subparser)
        if hasattr(command, "plugin_help"):  # options whose values the plugins declare
            command.plugin_help(subparser, registry)
    return parser


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        registry = load_registry()
    except NopropError as exc:  # a plugin that breaks the registry (a duplicate name, a misspelled hook)
        for line in exc.lines():
            print(f"noprop: error: {line}", file=sys.stderr)
        return exc.exit_code
    args = _parser(registry).parse_args(argv)
    console = Console(soft_wrap=True)  # result lines stay whole in logs and pipes
    try:
        if args.command != "plugins":
            registry.warn_if_broken(lambda text: print(text, file=sys.stderr))
        return BY_NAME[args.command].execute(args, Context(registry, console, started))
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
    except BrokenPipeError:  # `noprop recipes | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit stays quiet
        return 0
    except Exception as exc:  # a bug, not the user's input: one line, the traceback in a file
        log = save_traceback(exc)
        message = " ".join(str(exc).split())[:200]
        print(
            f"noprop: internal error: {type(exc).__name__}: {message} (full traceback: {log}; please report it)",
            file=sys.stderr,
        )
        return 1


def save_traceback(exc: BaseException) -> Path:
    """The traceback of an internal error, in a per-user folder (the run folder may be gone)."""
    import tempfile
    import traceback

    folder = Path(tempfile.gettempdir()) / f"noprop-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"error-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


if __name__ == "__main__":
    sys.exit(main())
