"""`none`: track nothing (metrics.json in the run directory still has everything)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import TrackerConfig, hookimpl

if TYPE_CHECKING:
    from noprop_core import Tracker


@attrs.frozen(kw_only=True)
class NoTrackerConfig(TrackerConfig):
    records_nothing = True


def build(config: NoTrackerConfig, **_context) -> Tracker:
    from noprop_core import Tracker  # the base class tracks nothing; torch, when used

    return Tracker()


@hookimpl
def noprop_register_trackers(registry) -> None:
    registry.add("none", build, config=NoTrackerConfig, description="no experiment tracking")
