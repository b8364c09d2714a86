"""Batch options shared by every per-scene command (``--skip-existing``, ``--shard``, ``--scheduler``...)."""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

from pydantic import BaseModel, Field, field_validator

from geotool.errors import ConfigError

_SCHEDULER = re.compile(r"^(local(:\d+)?|(tcp|tls|inproc|ucx)://.+)$")


class BatchOptions(BaseModel):
    """How a list of scenes is run: which part of it, skipping what is done, and on which workers."""

    skip_existing: bool = Field(False, description="Do not redo a scene whose final outputs all exist.")
    shard: Optional[str] = Field(None, description="K/N: run only the K-th of N disjoint parts of the sorted scene list; "
                                                   "`auto` takes K and N from a SLURM job array.")
    scheduler: Optional[str] = Field(None, description="Dask scheduler: local:N (N worker processes here) or tcp://host:port.")
    scheduler_file: Optional[str] = Field(None, description="scheduler.json of a running Dask cluster.")
    cluster: Optional[str] = Field(None, description="dask-jobqueue cluster YAML (SLURM/PBS) to start for this run.")

    @field_validator("shard")
    @classmethod
    def _shard_form(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value != "auto" and not re.fullmatch(r"\d+/\d+", value.strip()):
            raise ValueError(f"--shard takes K/N (e.g. 3/10) or auto, not {value!r}")
        return value

    @field_validator("scheduler")
    @classmethod
    def _scheduler_form(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _SCHEDULER.match(value):
            raise ValueError(f"--scheduler takes local:N or tcp://host:port, not {value!r}")
        return value

    def distributed(self) -> bool:
        """True when the scenes run on Dask workers rather than in this process."""
        return bool(self.scheduler or self.scheduler_file or self.cluster)

    def check(self) -> None:
        """At most one way to reach a Dask cluster."""
        given = [name for name, v in (("--scheduler", self.scheduler), ("--scheduler-file", self.scheduler_file),
                                      ("--cluster", self.cluster)) if v]
        if len(given) > 1:
            raise ConfigError(f"give one of {', '.join(given)}, not several: each names the cluster to run on")
        if self.cluster:
            from geotool.batch.cluster import read_cluster_yaml

            read_cluster_yaml(self.cluster)  # a missing or broken file is said before any model loads

    def shard_part(self, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
        """``(K, N)`` with 1 <= K <= N, or None when the whole list runs."""
        if self.shard is None:
            return None
        return parse_shard(self.shard, os.environ if environ is None else environ)


def parse_shard(text: str, environ: Mapping[str, str]) -> tuple[int, int]:
    """``"3/10"`` -> (3, 10); ``"auto"`` reads a SLURM job array (task id relative to its minimum, task count)."""
    if text.strip() == "auto":
        names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
        missing = [n for n in names if not environ.get(n)]
        if missing:
            raise ConfigError(f"--shard auto needs a SLURM job array (sbatch --array=...), but {', '.join(missing)} "
                              "is not set; give --shard K/N instead")
        try:
            task, low, count = (int(environ[n]) for n in names)
        except ValueError:
            raise ConfigError("--shard auto: the SLURM array variables are not integers; give --shard K/N") from None
        k, n = task - low + 1, count
    else:
        k, n = (int(part) for part in text.strip().split("/"))
    if n < 1 or not 1 <= k <= n:
        raise ConfigError(f"--shard {text}: K/N needs 1 <= K <= N (got K={k}, N={n})")
    return k, n


def take_shard(items: list, part: tuple[int, int] | None) -> list:
    """The K-th of N parts, dealt round-robin so shards get a mix of the list: disjoint, and together the whole."""
    if part is None:
        return list(items)
    k, n = part
    return list(items[k - 1::n])
