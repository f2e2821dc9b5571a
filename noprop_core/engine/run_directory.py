"""The run directory: resolved recipe, checkpoint and metrics, each written atomically."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from noprop_core.errors import NopropError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
RECIPE = "recipe.toml"
EVALUATIONS = "evaluations.json"
LOCK = ".lock"
CHECKPOINT_FORMAT = "noprop-checkpoint-1"
# Temporary files of an interrupted atomic write: ``.<name>.<random>`` beside the file.
TEMPORARY_PREFIXES = tuple(f".{name}." for name in (CHECKPOINT, METRICS, RECIPE, EVALUATIONS)) + (".write-test-",)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Run files get the modes the user's umask gives new files (temporary files start as 0600).
FILE_MODE = 0o666 & ~_read_umask()


def require_run_dir(run_dir: Path, prefix: str = "") -> None:
    """A one-line error unless ``run_dir`` holds a run's resolved recipe (``prefix``: the option
    that named it, e.g. "--resume ")."""
    if not (run_dir / RECIPE).is_file():
        raise NopropError(f"{prefix}{run_dir}: not a run directory (no {RECIPE})")


def concluded(run_dir: Path, epochs_done: int | None = None, epochs: int | None = None) -> bool:
    """The run's final evaluation is in its metrics.json (written once training has ended), and
    it trained ``epochs`` when that is given (a recipe resumed with more epochs is not done)."""
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return False
    trained = epochs is None or (epochs_done is not None and epochs_done >= epochs)
    return trained and isinstance(metrics, dict) and "test_accuracy_runs" in metrics


def default_run_dir(recipe_path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{recipe_path.stem}-{stamp}"


class RunDirLock:
    """An exclusive lock on a run directory (``flock`` on RUN_DIR/.lock, which holds the
    holder's PID): one process at a time trains, resumes or evaluates into a folder. The
    kernel releases it when the process ends, however it ends."""

    def __init__(self, run_dir: Path, purpose: str) -> None:
        self.run_dir = run_dir
        try:
            self.handle = open(run_dir / LOCK, "a+")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise NopropError(f"{run_dir}: cannot write there ({exc.strerror})") from None
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise NopropError(
                f"{run_dir}: in use by process {holder}; wait for it to end or choose "
                f"another directory (wanted it for {purpose})"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{os.getpid()}\n")
        self.handle.flush()
        os.chmod(self.handle.name, FILE_MODE)
        remove_stale_temporaries(run_dir)

    def release(self) -> None:
        """Unlock, removing the lock file first: the folder holds only the run's files. (Another
        process's non-blocking attempt on the old file fails, or succeeds on a new one: either way
        one holder at a time.)"""
        if not self.handle.closed:
            Path(self.handle.name).unlink(missing_ok=True)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Temporary files an interrupted write left behind (called under the folder's lock, so no
    other process is writing them)."""
    stale = [p for p in run_dir.iterdir() if p.is_file() and p.name.startswith(TEMPORARY_PREFIXES)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class NewRunDir:
    """A run directory being started: locked, and undone if the start fails."""

    def __init__(self, path: Path) -> None:
        if path.exists() and not path.is_dir():
            raise NopropError(f"--out {path}: exists and is not a directory")
        self.path, self.created = path, not path.exists()
        self.made = first_missing(path)  # the topmost folder this start makes (runs/ too, the first time)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NopropError(f"--out {path}: cannot write there ({exc.strerror})") from None
        try:
            self.lock = RunDirLock(path, "a new run")
        except NopropError:
            self._remove_if_created()
            raise
        if (path / METRICS).exists() or (path / CHECKPOINT).exists():
            self.lock.release()
            raise NopropError(f"--out {path}: already holds a run; choose another directory")

    def abandon(self) -> None:
        """A start that failed before the first checkpoint leaves nothing behind: the files it
        wrote go, and the folder too when this run created it."""
        if (self.path / CHECKPOINT).exists():
            self.lock.release()
            return
        for name in (RECIPE, METRICS, "aim_run.txt", LOCK):
            (self.path / name).unlink(missing_ok=True)
        self.lock.release()
        self._remove_if_created()

    def _remove_if_created(self) -> None:
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            remove_empty_up_to(self.path.parent, self.made)


def first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (None: ``path`` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_empty_up_to(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents while they are empty, up to ``top`` (a folder this
    process made); nothing when ``top`` is None or not an ancestor."""
    if top is None or (folder != top and top not in folder.parents):
        return
    while folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        if folder == top:
            break
        folder = folder.parent


def _atomic_write(path: Path, write: Any) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    try:
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    except OSError as exc:
        raise NopropError(f"{path}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, FILE_MODE)
        os.replace(handle.name, path)
    except (OSError, RuntimeError) as exc:  # a full disk (torch.save: RuntimeError), a read-only folder
        Path(handle.name).unlink(missing_ok=True)
        raise NopropError(
            f"{path}: cannot write ({getattr(exc, 'strerror', None) or exc}); the previous {path.name}, if any, "
            "is intact"
        ) from None
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_json_list(path: Path, items: list[dict[str, Any]]) -> None:
    write_text(path, json.dumps(items, indent=2) + "\n")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    _atomic_write(path, lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by noprop, or a one-line error naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NopropError(f"{path}: no checkpoint (did the run finish a step?)") from None
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or corrupt files all land here
        raise NopropError(f"{path}: not a readable noprop checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise NopropError(f"{path}: not a noprop checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise NopropError(f"{path}: incomplete noprop checkpoint (missing {', '.join(missing)})")
    return state


CHECKPOINT_KEYS = (
    "model",
    "unit_optimizers",
    "shared_optimizer",
    "lr_schedulers",
    "history",
    "step",
    "train_seconds",
    "rng",
    "current_epoch",
    "epoch",
    "recipe_path",
    "wall_seconds",
    "recipe",
)


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """The checkpoint's weights into ``model``, or one line when they belong to another model."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[1 if "\n" in str(exc).strip() else 0].strip()
        raise NopropError(f"{path}: its weights do not fit the run's recipe ({first[:200]})") from None
