"""Start-up time of the light `noprop` commands, and whether they import torch or Aim.

Each command runs in a fresh process ``--repeats`` times, the commands interleaved so machine
noise hits all alike; the median wall time is printed. Goals on a 2-core CPU: ``--help`` ≤ 0.5 s,
``validate`` ≤ 1.5 s.

    python benchmarks/cli_startup.py            # a table
    python benchmarks/cli_startup.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "plugins": ["plugins"],
    "validate": ["validate", str(ROOT / "recipes" / "cifar100_dt.toml")],
}
# Runs the command in-process, then reports which heavy libraries it imported.
PROBE = (
    "import sys, contextlib, io\n"
    "from noprop_core.cli.main import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try: main(sys.argv[1:])\n"
    "    except SystemExit: pass\n"
    "print('imports:' + ','.join(m for m in ('torch', 'torchvision', 'aim', 'numpy') if m in sys.modules))\n"
)


def wall_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "noprop_core.cli", *args], capture_output=True, check=False)
    return time.perf_counter() - started


def heavy_imports(args: list[str]) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("imports:")]
    return lines[-1].removeprefix("imports:") if lines else "(failed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(options.repeats):
        for name, args in COMMANDS.items():
            times[name].append(wall_seconds(args))
    result = {
        name: {"median_seconds": round(statistics.median(values), 3), "imports": heavy_imports(COMMANDS[name])}
        for name, values in times.items()
    }
    if options.json:
        print(json.dumps(result))
        return
    print(f"{'command':<12} {'median s':>9}  heavy libraries imported")
    for name, row in result.items():
        print(f"{name:<12} {row['median_seconds']:>9.3f}  {row['imports'] or '-'}")


if __name__ == "__main__":
    main()
