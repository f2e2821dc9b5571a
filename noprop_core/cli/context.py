"""What every command gets besides its arguments."""

from __future__ import annotations

import attrs
from rich.console import Console

from noprop_core.plugin.registry import Registry


@attrs.frozen
class Context:
    registry: Registry
    console: Console
    started: float  # perf_counter() when the command started: a run's wall time includes start-up
