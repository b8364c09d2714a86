"""Reach a Dask cluster for a batch: a local one started here, a running one, or a dask-jobqueue one
(SLURM/PBS) started from a YAML file and closed again when the batch ends."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from geotool.batch.options import BatchOptions
from geotool.errors import ConfigError, InputFileError

JOBQUEUE_TYPES = ("slurm", "pbs", "sge", "lsf", "htcondor")


@contextmanager
def connect(options: BatchOptions) -> Iterator[Any]:
    """A ``distributed.Client`` for ``options`` (closed, and any cluster it started shut down, on exit)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--scheduler/--cluster need dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    if options.scheduler and options.scheduler.startswith("local"):
        _, _, count = options.scheduler.partition(":")
        workers = int(count) if count else 1
        if workers < 1:
            raise ConfigError(f"--scheduler {options.scheduler}: give at least one worker, e.g. local:2")
        cluster = local_cluster(LocalCluster, workers)
        client = Client(cluster)
    elif options.scheduler:
        client = _client(Client, address=options.scheduler, what=f"--scheduler {options.scheduler}")
    elif options.scheduler_file:
        if not Path(options.scheduler_file).is_file():
            raise InputFileError(f"{options.scheduler_file}: no such scheduler file; start the scheduler with "
                                 "`dask scheduler --scheduler-file PATH` or give --scheduler tcp://host:port")
        client = _client(Client, scheduler_file=options.scheduler_file, what=f"--scheduler-file {options.scheduler_file}")
    else:
        cluster = jobqueue_cluster(options.cluster)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(LocalCluster, workers: int) -> Any:
    """``workers`` processes here, one task at a time each, sharing the cores: each worker's torch/BLAS threads
    are the cores divided by the workers (Dask would pin them to one, leaving cores idle with one worker).

    The thread counts go in each worker's own environment (Dask reads its spawn settings from the parent's
    environment first, where an earlier local cluster may have left its values)."""
    import dask

    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):  # see batch.worker
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=env)


def _client(Client, what: str, **kwargs) -> Any:
    try:
        return Client(timeout="30s", **kwargs)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"{what}: cannot reach the Dask scheduler ({exc}); check that it runs and the address") from None


def jobqueue_cluster(path: str) -> Any:
    """Start a dask-jobqueue cluster from YAML and submit its jobs (see :func:`build_jobqueue_cluster`)."""
    cluster, jobs = build_jobqueue_cluster(path)
    cluster.scale(jobs=jobs)
    return cluster


def build_jobqueue_cluster(path: str) -> tuple[Any, int]:
    """A dask-jobqueue cluster from YAML (not yet submitted) and how many jobs to submit: ``type`` (slurm,
    pbs, ...), ``jobs``, and the cluster class's own arguments (cores, memory, processes, queue, walltime,
    job_extra_directives...)."""
    settings = dict(read_cluster_yaml(path))
    kind = str(settings.pop("type", "slurm")).lower()
    jobs = settings.pop("jobs", 1)
    if kind not in JOBQUEUE_TYPES:
        raise ConfigError(f"{path}: type must be one of {', '.join(JOBQUEUE_TYPES)}, not {kind!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"{path}: jobs must be a positive integer (batch jobs to submit), not {jobs!r}")
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError("--cluster needs dask-jobqueue: pip install dask-jobqueue") from None
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "sge": dask_jobqueue.SGECluster,
           "lsf": dask_jobqueue.LSFCluster, "htcondor": dask_jobqueue.HTCondorCluster}[kind]
    try:
        cluster = cls(**settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {kind} cluster settings rejected ({exc}); see dask-jobqueue's {cls.__name__}") from None
    return cluster, jobs


def cluster_presets() -> list[str]:
    """Names of the shipped cluster examples (``slurm``), in ``geotool/configs/cluster/``."""
    from importlib.resources import files

    folder = files("geotool") / "configs" / "cluster"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_cluster_yaml(path: str) -> dict[str, Any]:
    """The user's cluster YAML, or a shipped example by name (``--cluster slurm``)."""
    from importlib.resources import as_file, files

    from geotool.io.files import read_yaml

    if not Path(path).exists() and path in cluster_presets():
        with as_file(files("geotool") / "configs" / "cluster" / f"{path}.yaml") as preset:
            return read_yaml(preset)
    if not Path(path).exists():
        raise InputFileError(f"--cluster {path}: no such file (shipped examples: {', '.join(cluster_presets())})")
    return read_yaml(path)
