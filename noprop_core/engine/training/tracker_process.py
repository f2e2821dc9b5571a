"""Tracking isolated from training: the tracker plugin lives in a child process.

The training loop only puts messages into a bounded queue and never waits on the tracker: a
tracker that stalls (an Aim repository on a full disk, a held lock, a hung network) or dies
cannot block a step, a checkpoint or a signal. When its queue is full, its process has died,
or it does not finish within ``close_timeout`` seconds at the end, it is detached with one
warning (its process killed) and the run goes on; the run directory holds everything.

A tracker whose factory cannot be sent to another process (one registered in-process with a
lambda, in tests or notebooks) runs in the training process as before.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from noprop_core.plugin.config import TrackerConfig
from noprop_core.plugin.tracker import Tracker

QUEUE_SIZE = 20_000  # messages; a run tracks a few hundred per epoch
CLOSE_TIMEOUT_ENV = "NOPROP_TRACKER_TIMEOUT"
DEFAULT_CLOSE_TIMEOUT = 120.0  # seconds for the tracker to finish its writes after training


def isolated(
    factory: Callable[..., Tracker], config: Any, *, experiment: str, run_dir: Path, notify: Callable[[str], None]
) -> Tracker:
    """The tracker ``factory(config, experiment=…, run_dir=…)`` in a child process, or in this
    process when the factory cannot be pickled."""
    try:
        pickle.dumps((factory, config))
    except (pickle.PicklingError, AttributeError, TypeError):
        return factory(config, experiment=experiment, run_dir=run_dir)
    return ProcessTracker(factory, config, experiment=experiment, run_dir=run_dir, notify=notify)


class ProcessTracker(Tracker):
    def __init__(
        self,
        factory: Callable[..., Tracker],
        config: TrackerConfig,
        *,
        experiment: str,
        run_dir: Path,
        notify: Callable[[str], None],
    ) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
        self.inbox = context.Queue(QUEUE_SIZE)
        self.inbox.cancel_join_thread()  # exiting never waits for a stalled child to drain it
        self.outbox = context.Queue()
        self.notify = notify
        self.name = getattr(config, "name", "tracker")
        self.close_timeout = float(os.environ.get(CLOSE_TIMEOUT_ENV, DEFAULT_CLOSE_TIMEOUT))
        self.fields: dict[str, Any] = {}
        self.detached = False
        self.process = context.Process(
            target=serve,
            args=(factory, config, experiment, run_dir, self.inbox, self.outbox),
            name=f"noprop-tracker-{self.name}",
            daemon=True,
        )
        self.process.start()

    def _send(self, message: tuple[Any, ...]) -> None:
        if self.detached:
            return
        if not self.process.is_alive():
            self._detach(f"its process ended (exit code {self.process.exitcode})")
            return
        try:
            self.inbox.put_nowait(message)
        except queue.Full:
            self._detach(f"it fell {QUEUE_SIZE} messages behind")

    def _detach(self, why: str) -> None:
        self.detached = True
        self.notify(
            f"noprop: warning: tracker '{self.name}' detached: {why}; training goes on, the run "
            "directory keeps everything"
        )
        if self.process.is_alive():
            self.process.kill()

    def start(self, hparams: dict[str, Any]) -> None:
        self._send(("start", hparams))

    def track(self, value: float, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        self._send(("track", value, name, step, epoch, context))

    def track_image(self, image: Any, *, name: str, step: int, epoch: int, context: dict[str, Any]) -> None:
        # numpy, not a tensor: the tracker's process never imports torch (it starts in a second)
        self._send(("track_image", image.detach().float().cpu().numpy(), name, step, epoch, context))

    def close(self) -> None:
        """Let the tracker finish its writes, for at most ``close_timeout`` seconds."""
        if self.detached:
            return
        self._send(("close",))
        try:
            kind, payload = self.outbox.get(timeout=self.close_timeout)
        except queue.Empty:
            if not self.detached:
                self._detach(f"it did not finish within {self.close_timeout:.0f} s (${CLOSE_TIMEOUT_ENV})")
            return
        if kind == "closed":
            self.run_id, self.fields = payload
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
        self.detached = True  # closed: nothing more goes to it

    def metrics_fields(self) -> dict[str, Any]:
        return self.fields


def serve(
    factory: Callable[..., Tracker], config: TrackerConfig, experiment: str, run_dir: Path, inbox: Any, outbox: Any
) -> None:
    """The child process: build the tracker, then apply the messages in order until "close"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the training process, which closes us
    parent = os.getppid()
    tracker = None
    try:
        tracker = factory(config, experiment=experiment, run_dir=run_dir)
        while True:
            try:
                message = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the training process was killed: finish what was tracked
                    tracker.close()
                    return
                continue
            kind = message[0]
            if kind == "start":
                tracker.start(message[1])
            elif kind in ("track", "track_image"):
                value, name, step, epoch, context = message[1:]
                getattr(tracker, kind)(value, name=name, step=step, epoch=epoch, context=context)
            elif kind == "close":
                tracker.close()
                outbox.put(("closed", (tracker.run_id, tracker.metrics_fields())))
                return
    except Exception as exc:  # noqa: BLE001 - reported to the user in one line, never to training
        print(
            f"noprop: warning: tracker '{getattr(config, 'name', '?')}' failed ({type(exc).__name__}: {exc}); "
            "training goes on without it",
            file=sys.stderr,
            flush=True,
        )
        outbox.put(("failed", None))
