"""nox sessions. Run `nox -l` to list them.

Sessions run in the environment nox itself runs in (`venv_backend="none"`): torch is ~5 GB,
and a fresh virtualenv per session would install it again each time. Create one environment
(`pip install -e ".[dev]"`), then run nox from it.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (offline, CPU)."""
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: print their measurements."""
    session.run("python", "benchmarks/block_step.py", *session.posargs)
