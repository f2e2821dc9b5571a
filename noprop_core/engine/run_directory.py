"""The run directory: resolved recipe, checkpoint and metrics, each written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from noprop_core.errors import NopropError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
RECIPE = "recipe.toml"
CHECKPOINT_FORMAT = "noprop-checkpoint-1"


def default_run_dir(recipe_path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{recipe_path.stem}-{stamp}"


def prepare_run_dir(path: Path) -> Path:
    """Create the directory; refuse one that already holds a run, so no work is overwritten."""
    if path.exists() and not path.is_dir():
        raise NopropError(f"--out {path}: exists and is not a directory")
    if (path / METRICS).exists() or (path / CHECKPOINT).exists():
        raise NopropError(f"--out {path}: already holds a run; choose another directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise NopropError(f"--out {path}: cannot write there ({exc.strerror})") from None
    return path


def _atomic_write(path: Path, write: Any) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
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
    return state
