"""Mutation testing of noprop's maths with mutmut: `nox -s mutation` (or `python tools/mutation.py`).

mutmut replaces one piece of a formula at a time (an operator, a constant, an argument) and
runs the fast maths tests against each such mutant; a mutant that no test fails on is a formula
the tests do not pin. What is mutated and which tests run is `[tool.mutmut]` in pyproject.toml.

The first-party plugins are imported as ``noprop_plugins`` (the installed package name of the
plugins/ folder) while mutmut names mutants after file paths, so the run happens in a scratch
copy (``.mutation/``) where the folder has that name. Surviving mutants that cannot change any
output are listed with their reason in tests/mutation_equivalents.toml; any other survivor
fails the session and is printed with its diff.

    python tools/mutation.py [--keep] [--jobs N] [--report] [MUTANT_GLOB ...]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import tomli

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
COPIES = {"noprop_core": "noprop_core", "plugins": "noprop_plugins", "tests": "tests", "recipes": "recipes"}
CAUGHT = {"killed", "timeout"}  # a mutant that makes the tests time out is caught as well


def prepare(keep: bool) -> None:
    if not keep:
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source, target in COPIES.items():
        shutil.rmtree(WORK / target, ignore_errors=True)
        shutil.copytree(ROOT / source, WORK / target, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", WORK / "pyproject.toml")


def mutmut(*arguments: str, capture: bool = False) -> str:
    environment = {**os.environ, "NOPROP_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mutmut", *arguments]
    result = subprocess.run(command, cwd=WORK, env=environment, text=True, capture_output=capture)
    if result.returncode != 0 and arguments[0] != "run":
        raise SystemExit(f"mutmut {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout if capture else ""


def statuses() -> dict[str, str]:
    lines = mutmut("results", "--all", "true", capture=True).splitlines()
    pairs = (line.strip().rsplit(": ", 1) for line in lines if ": " in line)
    return {name: status for name, status in pairs}


def equivalents() -> dict[str, str]:
    """Mutant name (or glob) → why it cannot change any output."""
    listed = tomli.loads(EQUIVALENTS.read_text()).get("equivalent", [])
    return {pattern: entry["reason"] for entry in listed for pattern in entry["mutants"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/mutation.py", description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="reuse .mutation/ (mutmut re-tests only what changed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
    parser.add_argument("--report", action="store_true", help="only report the results .mutation/ holds")
    parser.add_argument("mutants", nargs="*", help="only these mutant names or globs")
    options = parser.parse_args(argv)
    started = time.monotonic()
    if not options.report:
        prepare(options.keep)
        mutmut("run", "--max-children", str(options.jobs), *options.mutants)
    elif not (WORK / "mutants").is_dir():
        raise SystemExit(f"{WORK.relative_to(ROOT)}/mutants: nothing to report; run without --report first")
    found = statuses()
    if options.mutants:
        found = {n: s for n, s in found.items() if any(fnmatch.fnmatch(n, g) for g in options.mutants)}
    reasons = equivalents()

    def reason(name: str) -> str | None:
        return next((why for pattern, why in reasons.items() if fnmatch.fnmatch(name, pattern)), None)

    counts = Counter(found.values())
    not_caught = [name for name, status in found.items() if status not in CAUGHT]
    equivalent = [name for name in not_caught if reason(name) is not None]
    open_ = [name for name in not_caught if reason(name) is None]
    caught = sum(counts[status] for status in CAUGHT)
    judged = len(found) - len(equivalent)
    for name in open_:
        print(f"\n{found[name]}: {name}")
        print("\n".join(line for line in mutmut("show", name, capture=True).splitlines() if line[:2] in ("- ", "+ ")))
    print(
        f"\nmutants generated {len(found)}; killed {counts['killed']}, timed out {counts['timeout']}, "
        f"survived {counts['survived']}, no tests {counts['no tests']}, other {len(found) - sum(counts[s] for s in ('killed', 'timeout', 'survived', 'no tests'))}"
    )
    print(
        f"equivalent (listed in {EQUIVALENTS.relative_to(ROOT)}): {len(equivalent)}; not caught and not listed: {len(open_)}"
    )
    print(
        f"mutation score: {caught}/{judged} = {100 * caught / max(judged, 1):.1f} % of the non-equivalent mutants "
        f"killed ({time.monotonic() - started:.0f} s)"
    )
    return 1 if open_ else 0


if __name__ == "__main__":
    raise SystemExit(main())
