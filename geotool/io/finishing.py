"""What is left of a scene after the engine's last row, held as one step that may run later, in another thread.

A scene's rasters stream into temp files while its windows run. What follows the last row needs no model: the
COGs' overviews and copies, the renames, then what the task adds (polygons read from the class raster, a preview,
the sidecar last). A batch runs it in the background while the next scene's model runs (:mod:`geotool.batch.run`);
a lone scene runs it at once. :class:`Finishing` holds it:

- :func:`geotool.io.raster.open_writers` hands it the open writers (``finishing=``) instead of finishing them;
- the task adds its own steps with :meth:`Finishing.then`;
- :meth:`Finishing.run` does everything in order, from any thread, and returns the scene's result;
  :meth:`Finishing.drop` discards a finishing that was never run; :meth:`Finishing.stop` makes a running one stop
  at its next step (an interrupted batch).

A scene is all there or not at all: any error, a stop or a drop removes every temp file, and an error or a stop
during :meth:`~Finishing.run` also removes the scene's outputs (the sidecar, the marker that the scene is
finished, is removed before the first output is replaced and written by the last step).
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

#: Files beside a shapefile that belong to it (removed with it).
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


class FinishingStopped(Exception):
    """A finishing was stopped before it was done (the batch was interrupted); its files were removed."""


class Finishing:
    """The rest of one scene's work after its last row (see the module's description).

    Args:
        result: the scene's result so far; steps add to it and :meth:`run` returns it.
        marker: the file whose presence says the scene is finished (its sidecar): removed before any output is
            replaced, so a previous run's marker never vouches for a mix of old and new files.
    """

    def __init__(self, result: dict[str, Any] | None = None, marker: Path | None = None) -> None:
        self.result: Any = result if result is not None else {}
        self.marker = Path(marker) if marker is not None else None
        self.seconds = 0.0  # spent in run()
        self._groups: list[tuple[ExitStack, Callable[[], None], list[Path]]] = []
        self._steps: list[tuple[Callable[[], None], list[Path]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()  # run() and drop() may race: one of them takes the pending finishing
        self._state = "pending"  # -> "running" -> "done" | "failed"; or "dropped"

    @classmethod
    def finished(cls, result: Any) -> "Finishing":
        """A scene with nothing left to do: :meth:`run` returns ``result`` as it is."""
        finishing = cls()
        finishing.result = result
        return finishing

    @property
    def empty(self) -> bool:
        """True when nothing is left to do (no thread is worth starting for it)."""
        return not self._groups and not self._steps

    def hold_outputs(self, outputs: ExitStack, prepare: Callable[[], None], paths: Sequence[Path]) -> None:
        """Outputs still open in temp files: ``prepare()`` makes them (COG overviews and copies), then closing
        ``outputs`` renames them to ``paths``; closing it with an error removes their temp files instead."""
        self._groups.append((outputs, prepare, [Path(p) for p in paths]))

    def then(self, step: Callable[[], Any], outputs: Sequence[Path] = ()) -> None:
        """Run ``step()`` after the outputs are in place and the steps added before; ``outputs`` are the files
        it writes (atomically), removed again if a later step fails."""
        self._steps.append((step, [Path(p) for p in outputs]))

    @property
    def outputs(self) -> list[Path]:
        """Every final file this finishing writes, in order."""
        return [p for _, _, paths in self._groups for p in paths] + [p for _, paths in self._steps for p in paths]

    def run(self) -> dict[str, Any]:
        """Finish the scene: make and rename its outputs, then run the steps in order; return the result.

        On any error (or :meth:`stop`) every temp file and every output of the scene are removed, then the
        error (or :class:`FinishingStopped`) is raised."""
        with self._lock:
            if self._state == "dropped":  # dropped before its thread came to it: its temp files are gone
                raise FinishingStopped("the scene's finishing was dropped before it ran")
            if self._state != "pending":
                raise RuntimeError(f"a scene's finishing runs once (it is {self._state})")
            self._state = "running"
        finals = self.outputs  # the groups are taken off the list as they close
        replacing = False  # until the marker goes, a previous run's outputs are whole and stay
        start = time.perf_counter()
        try:
            self._check()
            replacing = True
            if self.marker is not None:
                self.marker.unlink(missing_ok=True)
            while self._groups:
                opened, prepare, _ = self._groups.pop(0)
                with opened:  # an error inside: the writers remove their temp files; a clean close renames them
                    prepare()
                    self._check()
            for step, _ in self._steps:
                self._check()
                step()
        except BaseException:
            self._state = "failed"
            self._close_groups()
            if replacing:
                remove_outputs(finals)
            raise
        finally:
            self.seconds += time.perf_counter() - start
        self._state = "done"
        return self.result

    def stop(self) -> None:
        """Ask a running :meth:`run` (in another thread) to stop at its next step and remove the scene's files."""
        self._stop.set()

    def drop(self) -> None:
        """Discard a finishing that has not started to run: its temp files go; outputs of earlier runs are left as
        they are. Does nothing to one that runs or ran (a running one cleans up after itself on :meth:`stop`)."""
        with self._lock:
            if self._state != "pending":
                return
            self._state = "dropped"
        self._close_groups()

    @contextmanager
    def dropped_on_error(self) -> Iterator["Finishing"]:
        """For the code that builds the finishing: an error (or Ctrl-C) before it is handed on drops it."""
        try:
            yield self
        except BaseException:
            self.drop()
            raise

    def _check(self) -> None:
        if self._stop.is_set():
            raise FinishingStopped("the batch was interrupted while this scene was being finished")

    def _close_groups(self) -> None:
        """Close the outputs not yet renamed as after an error: their writers remove their temp files."""
        error = FinishingStopped("the scene's finishing did not run")
        while self._groups:
            outputs, _, _ = self._groups.pop()
            try:
                outputs.__exit__(FinishingStopped, error, None)
            except FinishingStopped:
                pass


def remove_outputs(paths: Sequence[Path]) -> None:
    """Delete final outputs and what belongs to them (GDAL's ``.aux.xml``, a shapefile's parts), if present."""
    for path in paths:
        path = Path(path)
        parts = [path.with_suffix(ext) for ext in SHAPEFILE_PARTS] if path.suffix.lower() == ".shp" else [path]
        for part in parts + [path.with_name(path.name + ".aux.xml")]:
            part.unlink(missing_ok=True)
