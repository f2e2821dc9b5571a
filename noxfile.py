"""nox sessions. `nox -l` lists them; `nox` runs the default ones (tests, lint).

One environment for every session: sessions run in the environment nox itself runs in
(``venv_backend = "none"``). torch is ~5 GB and a fresh virtualenv per session would install it
again for each of the ~50 recipe sessions. Create the environment once — ``.ci/run`` does, or
``pip install torch torchvision && pip install -e ".[dev]"`` — and run nox from it. Nothing here
needs the network.

    nox -s "recipes(cifar100_dt)"       # one recipe through `noprop run --smoke`
    nox -t smoke                        # every recipe
    nox -s paper -- --match "mnist_*"    # Table 1 rows with the paper's protocol, then runs/paper/report.md
    nox -s bench                        # the benchmarks
    nox -s mutation                     # mutation testing of the maths (tools/mutation.py)
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
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
    shutil.rmtree(out, ignore_errors=True)  # the session can run again: a smoke run's folder is not kept
    session.run("noprop", "run", f"recipes/{recipe}.toml", "--smoke", "--out", str(out), *session.posargs)


@nox.session(default=False)
def paper(session: nox.Session) -> None:
    """Table 1 with the paper's protocol (a GPU box), then `noprop report` against the paper.

    Each recipe runs as `noprop run RECIPE --seeds 0 1 2 --out runs/paper/<recipe>`, each seed
    evaluated with the recipe's inference runs (the paper recipes: 5), pooled into mean ± standard error.
    Running the session again keeps finished seeds and resumes interrupted ones. Options after
    `--`: --match GLOB (recipe stems, repeatable; default: every mnist/cifar recipe),
    --seeds N [N ...] (default 0 1 2), --out DIR (default runs/paper), --launcher NAME|FILE and
    --launcher-set KEY=VALUE: every recipe's seeds as the jobs of one launch (e.g. a Slurm array
    job, one GPU per seed: docs/cluster.md) instead of one recipe after another here.
    """
    parser = argparse.ArgumentParser(prog="nox -s paper --")
    parser.add_argument("--match", action="append", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/paper"))
    parser.add_argument("--launcher")
    parser.add_argument("--launcher-set", action="append", default=[])
    options = parser.parse_args(session.posargs)
    patterns = options.match or ["mnist_*", "cifar10_*", "cifar100_*"]
    chosen = [stem for stem in RECIPES if any(fnmatch.fnmatch(stem, p) for p in patterns)]
    if not chosen:
        session.error(f"no recipe matches {patterns}")
    seeds = ["--seeds", *map(str, options.seeds)]  # every recipe as a seed group: rerunning keeps finished seeds
    groups = [str(options.out / stem) for stem in chosen]
    if options.launcher or options.launcher_set:
        launcher = ["--launcher", options.launcher or "local", *(f"--launcher-set={s}" for s in options.launcher_set)]
        session.run(
            "noprop", "run", *(f"recipes/{stem}.toml" for stem in chosen), *seeds, "--out", str(options.out), *launcher
        )  # one launch: every recipe's seeds at once, each into runs/paper/<recipe>/
    else:
        for stem, group in zip(chosen, groups):
            session.run("noprop", "run", f"recipes/{stem}.toml", *seeds, "--out", group)
    report = session.run("noprop", "report", "--markdown", *groups, silent=True)
    (options.out / "report.md").write_text(report)
    session.log(f"report: {options.out / 'report.md'}")


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """mutmut over the maths modules against the fast maths tests; prints the mutation score.

    Fails when a mutant survives that is not listed as equivalent in tests/mutation_equivalents.toml.
    Options after `--`: --keep (reuse .mutation/), --jobs N, mutant name globs."""
    session.run("python", "tools/mutation.py", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmarks; each prints a table."""
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)
