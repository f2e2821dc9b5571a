"""nox sessions. `nox -l` lists them; `nox` runs the default ones (tests, lint).

One environment for every session: sessions run in the environment nox itself runs in
(``venv_backend = "none"``). torch is ~5 GB and a fresh virtualenv per session would install it
again for each of the ~50 recipe sessions. Create the environment once — ``.ci/run`` does, or
``pip install torch torchvision && pip install -e ".[dev]"`` — and run nox from it. Nothing here
needs the network.

    nox -s "recipes(cifar100_dt)"       # one recipe through `noprop run --smoke`
    nox -t smoke                        # every recipe
    nox -s paper -- --match "mnist_*" --seeds 0 1 2   # full Table 1 runs, then one report
    nox -s bench                        # the benchmarks
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "lint"]

ROOT = Path(__file__).parent
RECIPES = sorted(path.stem for path in (ROOT / "recipes").glob("*.toml"))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (offline, CPU), including a smoke run of every recipe."""
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(tags=["smoke"])
@nox.parametrize("recipe", RECIPES, ids=RECIPES)
def recipes(session: nox.Session, recipe: str) -> None:
    """One recipe through `noprop run --smoke`: real code, a few batches, FakeData if the data is absent."""
    out = Path(session.create_tmp()) / recipe
    session.run("noprop", "run", f"recipes/{recipe}.toml", "--smoke", "--out", str(out), *session.posargs)


def finished(run_dir: Path) -> bool:
    """A run's metrics.json gets its train accuracy only once training has ended."""
    metrics = run_dir / "metrics.json"
    return metrics.is_file() and json.loads(metrics.read_text()).get("train_accuracy") is not None


@nox.session(default=False)
def paper(session: nox.Session) -> None:
    """Full-length Table 1 recipes (a GPU box), then `noprop report` against the paper.

    Options after `--`: --match GLOB (recipe stems, repeatable; default: every mnist/cifar
    recipe), --seeds N [N ...] (default 0), --out DIR (default runs/paper).
    """
    parser = argparse.ArgumentParser(prog="nox -s paper --")
    parser.add_argument("--match", action="append", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    options = parser.parse_args(session.posargs)
    patterns = options.match or ["mnist_*", "cifar10_*", "cifar100_*"]
    chosen = [stem for stem in RECIPES if any(fnmatch.fnmatch(stem, p) for p in patterns)]
    if not chosen:
        session.error(f"no recipe matches {patterns}")
    run_dirs = []
    for stem in chosen:
        for seed in options.seeds:
            run_dir = options.out / f"{stem}-seed{seed}"
            if finished(run_dir):
                session.log(f"{run_dir} already finished; kept")  # rerunning the session resumes the rest
            elif (run_dir / "checkpoint.pt").is_file():
                session.run("noprop", "run", "--resume", str(run_dir))
            else:
                session.run("noprop", "run", f"recipes/{stem}.toml", "--seed", str(seed), "--out", str(run_dir))
            run_dirs.append(str(run_dir))
    report = session.run("noprop", "report", "--markdown", *run_dirs, silent=True)
    (options.out / "report.md").write_text(report)
    session.log(f"report: {options.out / 'report.md'}")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmarks; each prints a table."""
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)
