"""Batches of scenes: the scene list and its shards, skip-existing, keep-going, ``scenes.csv``, and the
serial or Dask execution that every per-scene command (predict, generate-nir, evaluate, evaluate-nir)
shares. A command describes one scene's work as a :class:`~geotool.batch.job.SceneJob` (its ``start`` returns
what is left after the model as a :class:`~geotool.io.finishing.Finishing`, which a batch in one process runs in
the background while the next scene's model runs: :mod:`geotool.batch.background`); this package decides which
scenes run, where, and what is reported."""

from geotool.batch.job import SceneJob
from geotool.batch.options import BatchOptions
from geotool.batch.run import BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "SceneJob", "run_batch"]
