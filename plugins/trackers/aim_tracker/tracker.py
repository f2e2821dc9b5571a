"""The torch part of the plugin in this folder (see its ``__init__``)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from noprop_core import Tracker

from . import AimConfig

AIM_REPO_ENV = "NOPROP_AIM_REPO"
RUN_HASH_FILE = "aim_run.txt"


def init_lock_path(repo: Path) -> Path:
    """A lock file per user and repository, outside it (the working directory stays clean), in
    a folder only this user can write: another user cannot hold it."""
    digest = hashlib.sha1(str(repo).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"noprop-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user")
    return folder / f"aim-{digest}.lock"


def acquire(lock, seconds: float, what: str) -> bool:
    """flock ``lock``, waiting at most ``seconds`` (and saying so once if it has to wait)."""
    deadline = time.monotonic() + seconds
    told = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            if not told:
                print(f"noprop: waiting up to {seconds:.0f} s for {what}", file=sys.stderr, flush=True)
                told = True
            time.sleep(0.1)


def resolve_repo(config: AimConfig) -> Path:
    return Path(config.repo or os.environ.get(AIM_REPO_ENV) or ".").expanduser().absolute()


class AimTracker(Tracker):
    def __init__(self, config: AimConfig, experiment: str, run_dir: Path) -> None:
        self.repo = resolve_repo(config)
        self.experiment = config.experiment or experiment
        self.lock_wait = config.lock_wait
        self.run_dir = run_dir
        self.run = None
        self.failed = False

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self.failed:
            print(
                f"noprop: warning: Aim {what} failed for repo {self.repo} ({type(exc).__name__}: {exc}); "
                f"training goes on without tracking, {self.run_dir} keeps everything",
                file=sys.stderr,
            )
        self.failed = True

    def start(self, hparams: dict[str, Any]) -> None:
        try:
            from aim import Run

            self.repo.mkdir(parents=True, exist_ok=True)
            hash_file = self.run_dir / RUN_HASH_FILE
            previous = hash_file.read_text().strip() if hash_file.is_file() else None
            # Aim initialises a new repository without guarding against a second process doing
            # the same (one of two concurrent first runs then fails): opening is serialised.
            lock_path = init_lock_path(self.repo)
            with open(lock_path, "a") as lock:
                if not acquire(
                    lock, self.lock_wait, f"another process opening Aim repository {self.repo} ({lock_path})"
                ):
                    raise TimeoutError(f"{lock_path} still held after {self.lock_wait:.0f} s")
                if previous:  # a resumed run continues its Aim run
                    run = Run(run_hash=previous, repo=str(self.repo))
                else:
                    run = Run(repo=str(self.repo), experiment=self.experiment)
                    run.name = self.run_dir.name  # the run list shows the folder, not a hash
                    hash_file.write_text(run.hash + "\n")
            run["hparams"] = hparams
            self.run, self.run_id = run, run.hash
        except Exception as exc:  # noqa: BLE001 - any failure of the tracker must not stop training
            self.run = None
            self._warn("open", exc)

    def track(self, value: float, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.track(value, name=name, step=step, epoch=epoch, context=context)
        except Exception as exc:  # noqa: BLE001
            self._warn("track", exc)
            self.close()

    def track_image(self, image: Any, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            from aim import Image

            self.run.track(
                Image(as_pixels(image), caption=f"{name} {context}"), name=name, step=step, epoch=epoch, context=context
            )
        except Exception as exc:  # noqa: BLE001
            self._warn("track", exc)
            self.close()

    def metrics_fields(self) -> dict[str, Any]:
        return {"aim_run_hash": self.run_id, "aim_repo": str(self.repo)}

    def close(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            try:
                run.close()
            except Exception as exc:  # noqa: BLE001
                self._warn("close", exc)


def as_pixels(image: Any):
    """(C, H, W) values in [0, 1] (a tensor or a numpy array) as 8-bit (H, W) or (H, W, C) pixels."""
    import numpy

    values = numpy.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=numpy.float32)
    pixels = (numpy.clip(values, 0.0, 1.0) * 255).round().astype(numpy.uint8).transpose(1, 2, 0)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def build(config: AimConfig, *, experiment: str, run_dir: Path, **_context) -> AimTracker:
    return AimTracker(config, experiment, run_dir)
