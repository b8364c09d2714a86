"""One scene's finishing in a background thread while the next scene's model runs (one process, many scenes).

After a scene's last row, what is left (COG overviews and copies, renames, polygons, preview, the sidecar last:
a :class:`~geotool.io.finishing.Finishing`) needs no model. :class:`BackgroundFinisher` runs it in one worker
thread, so a GPU (or the CPU running the model) goes on to the next scene instead of waiting. At most one scene
finishes in the background at a time: the runner waits for it before handing over the next, so memory and temp
files on disk are at most one scene's more than a serial run.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

from geotool.io.atomic import signals_deferred
from geotool.io.finishing import Finishing, FinishingStopped

#: Seconds between checks while waiting for the background thread (so Ctrl-C and SIGTERM are handled at once).
POLL_SECONDS = 0.05


@dataclass
class Started:
    """A scene whose model has run: its finishing, and the seconds its start took."""

    scene: str
    finishing: Finishing
    seconds: float


@dataclass
class Finished:
    """How a scene's finishing ended: its result, or the error it raised (its files then removed)."""

    started: Started
    result: Any = None
    error: Optional[BaseException] = None

    @property
    def seconds(self) -> float:
        """The scene's own time: its start plus its finishing (not the time spent waiting for a thread)."""
        return self.started.seconds + self.started.finishing.seconds


class BackgroundFinisher:
    """Runs one :class:`Finishing` at a time in a worker thread (started when first needed)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._running: tuple[Started, Future] | None = None

    @property
    def busy(self) -> bool:
        return self._running is not None

    def submit(self, started: Started) -> None:
        """Start finishing ``started`` in the background; the previous one must have been collected."""
        if self._running is not None:
            raise RuntimeError("one scene finishes in the background at a time: collect() the previous one first")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="geotool-finish")
        with signals_deferred():  # the first submit starts the thread: a signal inside would orphan the finishing
            self._running = (started, self._pool.submit(started.finishing.run))

    def collect(self) -> Finished | None:
        """Wait for the scene finishing in the background (None when there is none) and return how it ended."""
        if self._running is None:
            return None
        started, future = self._running
        while not future.done():  # short waits: a signal handler runs between them
            time.sleep(POLL_SECONDS)
        self._running = None
        error = future.exception()
        return Finished(started, error=error) if error is not None else Finished(started, result=future.result())

    def interrupt(self) -> Finished | None:
        """The batch is being interrupted: stop the finishing in the background at its next step and wait until it
        has removed its files. Returns how it ended when it had finished before it could be stopped (done or
        failed on its own), None when it was stopped or there was none."""
        if self._running is None:
            return None
        started, _ = self._running
        started.finishing.stop()
        finished = self.collect()
        return None if isinstance(finished.error, FinishingStopped) else finished

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
