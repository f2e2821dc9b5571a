"""The default recipe's wall time on a quiet machine and with K busy background processes.

For K = 0, 1, 2, 4 (``--loads``) the benchmark starts K processes that spin on the CPU (each
stops by itself after ``--spin-limit`` seconds and is killed when its K is done), then runs
``noprop run`` (the default recipe, ``--epochs`` epochs, tracker none) once per thread policy:

- ``auto``: noprop's default (``speed.threads = "auto"``, see ``noprop_core.speed.threads``);
- ``torch``: PyTorch's default thread count (``speed.threads = "torch"``), what runs got before.

The two policies alternate within each K, so both see the same load. ``OMP_NUM_THREADS`` is
removed from the runs' environment (it would override both policies). Goal: with K = 2 the
default policy takes at most 2.5× its quiet time.

    python benchmarks/under_load.py                    # K = 0, 1, 2, 4; 2 epochs
    python benchmarks/under_load.py --json --epochs 4
    python benchmarks/under_load.py --set train.max_batches=3   # any recipe override, for a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("auto", "torch")
SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"


def run_seconds(policy: str, epochs: int, out: Path, overrides: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    command = [
        sys.executable,
        "-m",
        "noprop_core.cli",
        "run",
        str(ROOT / "recipes" / "digits_dt.toml"),
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "tracker.name=none",
        "--set",
        f'speed.threads="{policy}"',
        "--out",
        str(out),
    ]
    command += [arg for override in overrides for arg in ("--set", override)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def under_load(loads: list[int], epochs: int, spin_limit: float, overrides: list[str]) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="noprop-under-load-") as scratch:
        for load in loads:
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN, str(spin_limit)]) for _ in range(load)]
            try:
                time.sleep(1.0 if load else 0.0)  # let the spinners get going
                results[load] = {
                    policy: run_seconds(policy, epochs, Path(scratch) / f"k{load}-{policy}", overrides)
                    for policy in POLICIES
                }
            finally:
                for spinner in spinners:
                    spinner.kill()
                    spinner.wait()
            print(f"K = {load}: " + ", ".join(f"{p} {s:.1f} s" for p, s in results[load].items()), file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--spin-limit", type=float, default=900.0, help="a spinner's own time limit (seconds)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override passed on to every run (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results = under_load(options.loads, options.epochs, options.spin_limit, options.overrides)
    quiet = results.get(0)
    report = {
        "cpus": len(os.sched_getaffinity(0)),
        "epochs": options.epochs,
        "overrides": options.overrides,
        "seconds": {str(k): v for k, v in results.items()},
        **(
            {"over_quiet": {str(k): {p: v[p] / quiet[p] for p in POLICIES} for k, v in results.items()}}
            if quiet
            else {}
        ),
    }
    if options.json:
        print(json.dumps(report, indent=2))
        return
    print(f"digits_dt, {options.epochs} epoch(s), {report['cpus']} CPUs; wall seconds of `noprop run`")
    print(f"{'K busy':>6}  {'auto s':>8}  {'torch s':>8}  {'auto/quiet':>10}  {'torch/quiet':>11}  torch/auto")
    for load, row in results.items():
        ratios = f"{row['auto'] / quiet['auto']:>10.2f}  {row['torch'] / quiet['torch']:>11.2f}" if quiet else " " * 23
        print(f"{load:>6}  {row['auto']:>8.1f}  {row['torch']:>8.1f}  {ratios}  {row['torch'] / row['auto']:.2f}")


if __name__ == "__main__":
    main()
