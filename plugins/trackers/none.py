"""`none`: track nothing (metrics.json in the run directory still has everything)."""

from __future__ import annotations

import attrs

from noprop_core import Tracker, TrackerConfig, hookimpl


@attrs.frozen(kw_only=True)
class NoTrackerConfig(TrackerConfig):
    pass


def build(config: NoTrackerConfig, **_context) -> Tracker:
    return Tracker()


@hookimpl
def noprop_register_trackers(registry):
    registry.add("none", build, config=NoTrackerConfig, description="no experiment tracking")
