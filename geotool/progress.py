"""Progress bars on stderr: shown on a terminal, silent in pipes, batch logs and with ``--quiet``."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


def progress_enabled() -> bool:
    """True when bars should be drawn: stderr is a terminal, ``--quiet`` was not given and this is the main thread
    (a scene finishing in the background, e.g. its polygons, must not draw over the next scene's bar)."""
    import threading

    from geotool.run_state import STATE

    return not STATE.quiet and sys.stderr.isatty() and threading.current_thread() is threading.main_thread()


class _NullTask:
    def advance(self, n: int = 1) -> None:  # noqa: D102 - no-op
        pass


class _RichTask:
    def __init__(self, progress, task_id) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task_id, n)


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[_NullTask | _RichTask]:
    """A progress bar for ``total`` steps; yields an object with ``advance(n)`` (drawing nothing when not
    ``enabled``, e.g. where a bar would only repeat another).

    Example:
        with progress_bar("predict scene.tif", total=n_windows) as bar:
            for window in windows:
                ...
                bar.advance()
    """
    if not (enabled and progress_enabled()):
        yield _NullTask()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.console import Console

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task_id = progress.add_task(description, total=total)
        yield _RichTask(progress, task_id)
