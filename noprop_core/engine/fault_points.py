"""Named points in the life of a sweep's trial and of a seed group, where a test can kill the
process on purpose (``NOPROP_KILL_AT=<point>``: SIGKILL, nothing cleaned up), to show that
nothing is lost at any instant. Does nothing unless that variable names the point."""

from __future__ import annotations

import os
import signal

KILL_AT = "NOPROP_KILL_AT"

SWEEP_POINTS = ("after_ask", "after_owner", "mid_training", "after_result", "before_tell", "after_tell")
SEED_GROUP_POINTS = ("after_plan", "mid_training", "after_seed", "before_protocol", "after_protocol")


def reached(point: str) -> None:
    """Kill this process here when the test hook names ``point``."""
    if os.environ.get(KILL_AT) == point:
        os.kill(os.getpid(), signal.SIGKILL)
