"""Run a :class:`SceneJob` over scenes: in this process or on Dask workers, keeping going past failures."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from geotool.batch.background import BackgroundFinisher, Finished, Started
from geotool.batch.job import SceneJob, release, resources_for
from geotool.batch.options import BatchOptions, take_shard
from geotool.batch.report import SceneOutcome, SceneReport, report_name
from geotool.errors import GeotoolError, InputFileError

log = logging.getLogger(__name__)

#: Finish each scene (COGs, polygons, preview, sidecar) in a background thread while the next scene's model runs.
#: False finishes every scene before the next starts (the same files; for benchmarks and tests).
BACKGROUND_FINISHING = True


@dataclass
class BatchResult:
    """Every scene's outcome in scene order, and the report written (None for a lone scene)."""

    outcomes: list[SceneOutcome] = field(default_factory=list)
    report: Optional[Path] = None
    pooled: Optional[dict] = None  # a command's summary over every finished scene (evaluate's pooled metrics)

    @property
    def failed(self) -> list[SceneOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def finished(self) -> list[str]:
        """The scenes whose outputs exist: done in this run or skipped as done before."""
        return [o.input for o in self.outcomes if o.status in ("done", "skipped")]

    @property
    def results(self) -> list[dict]:
        """What the job returned for each scene done in this run."""
        return [o.result for o in self.outcomes if o.status == "done" and o.result is not None]

    def summary_line(self) -> str:
        """``K of N scenes failed (see .../scenes.csv)`` (or how many were done and skipped)."""
        n = len(self.outcomes)
        where = f" (see {self.report})" if self.report else ""
        if self.failed:
            return f"{len(self.failed)} of {n} scenes failed{where}"
        skipped = sum(o.status == "skipped" for o in self.outcomes)
        return f"{n - skipped} of {n} scenes done, {skipped} skipped{where}"


def describe_failure(exc: BaseException, scene: str) -> str:
    """One line for ``scenes.csv``: the user's problem as geotool words it, a corrupt file as such, else a bug."""
    if isinstance(exc, GeotoolError):
        return " ".join(str(exc).split())
    text = " ".join(str(exc).split())
    cause = exc.__cause__ or exc.__context__
    if "previous exception" in text and cause is not None:  # rasterio: the GDAL message is on the cause
        text = " ".join(str(cause).split())
    if _is_raster_read_error(exc):
        return f"{scene}: the file is unreadable or corrupt ({text}); check or re-create it"
    if isinstance(exc, OSError):
        return f"{scene}: {exc.strerror or text}"
    return f"unexpected {type(exc).__name__}: {text} (this is a bug in geotool; the log file has the traceback)"


def _is_raster_read_error(exc: BaseException) -> bool:
    try:
        from rasterio.errors import RasterioError
    except ImportError:  # pragma: no cover - rasterio is a dependency
        return False
    return isinstance(exc, RasterioError) or type(exc).__module__.startswith("rasterio")


def run_scene(job: SceneJob, scene: str) -> SceneOutcome:
    """Run one scene, its finishing included, and report instead of raising (Ctrl-C still stops)."""
    started = start_scene(job, scene)
    return started if isinstance(started, SceneOutcome) else _outcome(job, finish_scene(started))


def _picklable(exc: BaseException) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return True
    except Exception:  # noqa: BLE001 - any pickling problem means: do not ship it
        return False


def _run_on_worker(job: SceneJob, scene: str) -> SceneOutcome:
    """The task a Dask worker runs (the model kept between scenes, see :func:`geotool.batch.job.resources_for`)."""
    from geotool.batch.worker import prepare_worker

    prepare_worker()
    return run_scene(job, scene)


def run_batch(job: SceneJob, scenes: list[str], options: BatchOptions, out_dir: Path,
              on_outcome: Callable[[SceneOutcome], None] | None = None) -> BatchResult:
    """Run ``job`` over the sorted ``scenes`` (or this run's shard of them).

    Scenes whose outputs all exist are ``skipped`` with ``--skip-existing``; a scene that fails is
    reported and the rest go on. More than one scene, a shard or a cluster writes ``scenes.csv`` (or
    ``scenes-K-of-N.csv``) in ``out_dir``; a lone scene that fails raises its error as a one-scene
    command always has.
    """
    options.check()
    part = options.shard_part()
    ordered = sorted(dict.fromkeys(str(s) for s in scenes))
    mine = take_shard(ordered, part)
    lone = len(ordered) == 1 and part is None and not options.distributed()
    report = None if lone else SceneReport(out_dir / report_name(part), mine)
    result = BatchResult(report=report.path if report else None)
    outcomes: dict[str, SceneOutcome] = {}
    folder_was_there = out_dir.exists()

    def record(outcome: SceneOutcome) -> None:
        outcomes[outcome.input] = outcome
        if outcome.status == "failed":  # the CLI says the message; the log file keeps the traceback
            log.info("%s failed: %s", outcome.input, outcome.message)
            log.debug("traceback of %s:\n%s", outcome.input, outcome.traceback or "(none)")
        else:
            log.info("%s %s in %.2f s", outcome.input, outcome.status, outcome.seconds)
        if report:
            report.add(outcome)
        if on_outcome and not (lone and outcome.status == "failed"):  # a lone failure is raised, said once
            on_outcome(outcome)

    todo = []
    for scene in mine:
        if options.skip_existing and job.is_finished(scene):
            record(SceneOutcome(scene, "skipped", outputs=[str(p) for p in job.outputs(scene)], message="outputs exist"))
        else:
            todo.append(scene)
    try:
        if todo and options.distributed():
            _run_distributed(job, todo, options, record)
        elif todo:
            _run_here(job, todo, record)
    finally:
        result.outcomes = [outcomes[s] for s in mine if s in outcomes]
        if report:
            report.write()
        if not folder_was_there and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a run that wrote nothing leaves no empty folder behind
    if lone and result.failed:
        _raise_lone(result.failed[0])
    return result


def _raise_lone(outcome: SceneOutcome) -> None:
    """A one-scene command fails as it always has: its own error, or a corrupt file as a user error."""
    if isinstance(outcome.error, GeotoolError):
        raise outcome.error
    if outcome.error is not None and not _is_raster_read_error(outcome.error) and not isinstance(outcome.error, OSError):
        raise outcome.error
    raise InputFileError(outcome.message)


def _run_here(job: SceneJob, todo: list[str], record: Callable[[SceneOutcome], None]) -> None:
    """The scenes one after the other in this process. A scene's finishing (COGs, polygons, preview, the sidecar
    last) runs in a background thread while the next scene's model runs; at most one at a time, and the last
    scene's (or a lone scene's) in this thread. Outcomes are recorded in scene order."""
    from geotool.progress import progress_bar

    background = BackgroundFinisher()
    current: Started | None = None  # the last scene started: dropped if the batch is interrupted before it runs
    try:
        # one scene: the engine's own bar is the progress
        with progress_bar(f"{job.command}: scenes", total=len(todo), enabled=len(todo) > 1) as bar:

            def report(outcome: SceneOutcome) -> None:
                record(outcome)
                bar.advance()

            for i, scene in enumerate(todo):
                started = start_scene(job, scene)
                current = started if isinstance(started, Started) else None
                if background.busy:  # the previous scene first: outcomes stay in scene order
                    report(_outcome(job, background.collect()))
                if isinstance(started, SceneOutcome):
                    report(started)
                elif i + 1 == len(todo) or started.finishing.empty or not BACKGROUND_FINISHING:  # nothing to overlap
                    report(_outcome(job, finish_scene(started)))
                else:
                    background.submit(started)
    except BaseException:
        if current is not None:
            current.finishing.drop()  # nothing when it already runs (or ran): its run cleans up after itself
        ended = background.interrupt()
        if ended is not None:  # it finished before it could be stopped: it is this batch's, say so
            record(_outcome(job, ended))
        raise
    finally:
        background.close()
        release(job)


def start_scene(job: SceneJob, scene: str) -> Started | SceneOutcome:
    """Run one scene up to its finishing (the model's part); a failure is the scene's ``failed`` outcome."""
    from geotool.io.atomic import remove_stale_temp_files

    start = time.perf_counter()
    try:
        if remove_stale_temp_files(job.outputs(scene)):  # left by a run that was killed while writing this scene
            log.info("%s: removed temporary files a killed run left", scene)
        finishing = job.start(resources_for(job), scene)
    except Exception as exc:  # noqa: BLE001 - every failure of one scene is that scene's row
        return _failed(scene, time.perf_counter() - start, exc)
    return Started(scene, finishing, time.perf_counter() - start)


def finish_scene(started: Started) -> Finished:
    """Run a scene's finishing in this thread."""
    try:
        return Finished(started, result=started.finishing.run())
    except Exception as exc:  # noqa: BLE001 - the scene's row says it
        return Finished(started, error=exc)


def _outcome(job: SceneJob, finished: Finished) -> SceneOutcome:
    scene = finished.started.scene
    if finished.error is not None:
        return _failed(scene, finished.seconds, finished.error)
    outputs = [str(p) for p in job.outputs(scene) if Path(p).exists()]
    return SceneOutcome(scene, "done", finished.seconds, outputs=outputs, result=finished.result)


def _failed(scene: str, seconds: float, exc: BaseException) -> SceneOutcome:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return SceneOutcome(scene, "failed", seconds, message=describe_failure(exc, scene), traceback=text,
                        error=exc if _picklable(exc) else None)


def _run_distributed(job: SceneJob, todo: list[str], options: BatchOptions, record: Callable[[SceneOutcome], None]) -> None:
    """Scenes as Dask tasks, one per scene; each worker loads the job's model once and keeps it."""
    from geotool.batch.cluster import connect
    from geotool.progress import progress_bar

    with connect(options) as client:
        from distributed import as_completed

        shared = client.scatter(job, broadcast=True, hash=False)
        futures = {client.submit(_run_on_worker, shared, scene, pure=False, key=f"{job.command}-{i}"): scene
                   for i, scene in enumerate(todo)}
        try:
            with progress_bar(f"{job.command}: scenes", total=len(todo)) as bar:
                for future in as_completed(futures):
                    scene = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker fails its scene, not the batch
                        outcome = SceneOutcome(scene, "failed", message=f"{scene}: the Dask worker running it was lost "
                                               f"({type(exc).__name__}: {' '.join(str(exc).split())})")
                    record(outcome)
                    bar.advance()
        except BaseException:
            client.cancel(list(futures))
            raise
