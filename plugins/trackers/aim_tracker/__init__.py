"""`aim`: track runs in an Aim repository (the default tracker). View them with `aim up`.

One Aim run per `noprop run`, experiment = the recipe's file stem. The repository is the
folder holding ``.aim``: ``tracker.repo`` (or ``noprop run --aim-repo``), else $NOPROP_AIM_REPO,
else the working directory; it is created if missing. ``run["hparams"]`` is the resolved recipe.
The run's hash goes to metrics.json (``aim_run_hash``) and to RUN_DIR/aim_run.txt, so that
``noprop run --resume`` continues the same Aim run.

Tracking never costs a run: the tracker runs in its own process (noprop_core.engine.training.tracker_process),
so a stalled repository cannot block training; if the repository cannot be opened, or a write
fails, training goes on with one warning and the run directory still gets everything. Opening
a repository is serialised between processes by a lock file per user and repository; waiting
for it is bounded by ``lock_wait`` seconds and reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from noprop_core import TrackerConfig, hookimpl

if TYPE_CHECKING:
    from pathlib import Path


@attrs.frozen(kw_only=True)
class AimConfig(TrackerConfig):
    repo: str | None = None  # folder holding .aim; default $NOPROP_AIM_REPO, else the working directory
    experiment: str | None = None  # default: the recipe's file stem
    lock_wait: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))  # s for another process's Aim set-up


def build(config: AimConfig, *, experiment: str, run_dir: Path, **_context):
    from .tracker import build as implementation  # torch: imported when the plugin is used

    return implementation(config, experiment=experiment, run_dir=run_dir, **_context)


@hookimpl
def noprop_register_trackers(registry) -> None:
    registry.add("aim", build, config=AimConfig, description="Aim repository (default); view with `aim up`")
