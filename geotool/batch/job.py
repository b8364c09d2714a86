"""The contract between a per-scene command and the batch runner."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geotool.io.finishing import Finishing

# Per-process cache of what a job loads once (its model): a Dask worker keeps it across the scenes it runs.
_RESOURCES: dict[str, Any] = {}


class SceneJob(ABC):
    """One command's work on one scene.

    A job is pickled to Dask workers, so it holds settings (a pydantic config), never open files or
    models; :meth:`setup` loads those once per process and :meth:`run` receives what it returned.
    """

    command: str = "geotool"

    @abstractmethod
    def outputs(self, scene: str) -> list[Path]:
        """The final files of ``scene``: when all exist the scene is finished (they are written atomically)."""

    def is_finished(self, scene: str) -> bool:
        """True when ``--skip-existing`` may keep ``scene``: by default, when all its outputs exist."""
        finals = self.outputs(scene)
        return bool(finals) and all(Path(p).exists() for p in finals)

    def setup(self) -> Any:
        """Load what every scene shares (the model); called once per process. Default: nothing."""
        return None

    @abstractmethod
    def run(self, resources: Any, scene: str) -> dict[str, Any]:
        """Process ``scene`` and return its results (JSON-able); raise on failure."""

    def start(self, resources: Any, scene: str) -> "Finishing":
        """Process ``scene`` up to what needs no model, and return the rest (COGs, renames, polygons, preview, the
        sidecar last) as a :class:`~geotool.io.finishing.Finishing`, whose ``run()`` returns what :meth:`run` would.
        A batch in one process runs it in a background thread while the next scene's model runs. ``run`` must
        equal ``start(...).run()``. Default: all of :meth:`run` now, nothing left."""
        from geotool.io.finishing import Finishing

        return Finishing.finished(self.run(resources, scene))

    def cache_key(self) -> str:
        """Identifies the setup: jobs with equal settings share one loaded model in a process."""
        settings = self.__dict__.get("cfg")
        text = settings.model_dump_json() if hasattr(settings, "model_dump_json") else json.dumps(repr(self.__dict__))
        return f"{self.command}:{hashlib.sha1(text.encode()).hexdigest()}"


def resources_for(job: SceneJob) -> Any:
    """``job.setup()``, paid once per process for equal settings."""
    key = job.cache_key()
    if key not in _RESOURCES:
        _RESOURCES[key] = job.setup()
    return _RESOURCES[key]


def release(job: SceneJob) -> None:
    """Drop the cached setup of ``job`` (a serial run frees its model when the batch is over)."""
    _RESOURCES.pop(job.cache_key(), None)


def worker_slot() -> int | None:
    """This process's place among the Dask workers of its machine (0, 1, ...), or None outside a worker.

    A LocalCluster names its workers 0..N-1; dask-jobqueue names them ``<job>-<process>``: the trailing
    number is the slot either way."""
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):
        return None
    digits = name.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else 0
