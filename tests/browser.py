"""A headless Chromium driven over the DevTools protocol (websockets, which Aim already needs).

Enough to open a page, wait until a JavaScript condition holds, read values from the page and
take a screenshot: the Aim explorer draws its charts after its query finishes, which a fixed
``--virtual-time-budget`` does not wait for.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


class Browser:
    def __init__(self, executable: str, width: int = 1600, height: int = 1000):
        # Chromium's helper processes can still write to the profile as it is removed.
        self.profile = tempfile.TemporaryDirectory(prefix="noprop-chromium-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile.name}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ids = itertools.count(1)
        self.exits = contextlib.ExitStack()
        self.socket = self._connect(Path(self.profile.name) / "DevToolsActivePort")

    def _connect(self, port_file: Path, timeout: float = 30):
        from urllib.request import urlopen

        from websockets.sync.client import connect

        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        while not (
            pages := [
                t for t in json.load(urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10)) if t["type"] == "page"
            ]
        ):
            if time.monotonic() > deadline:  # the port opens before the first tab exists
                raise RuntimeError("Chromium opened no page")
            time.sleep(0.1)
        page = pages[0]
        return self.exits.enter_context(connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20))

    def call(self, method: str, **params):
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:  # events arrive in between; only the answer to this call matters
            answer = json.loads(self.socket.recv(timeout=60))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the new page to load (not the old one still showing)."""
        before = self.evaluate("location.href")
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href !== {json.dumps(before)} && document.readyState === 'complete'")

    def wait_for(self, condition: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never satisfied: {condition}")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.exits.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # Chromium and its helper processes
            self.process.wait(timeout=30)
            self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
