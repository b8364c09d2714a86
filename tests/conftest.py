"""Shared fixtures: tiny GeoTIFFs and vectors with real CRSs, made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

DATA_SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"


def make_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
) -> Path:
    """Write ``data`` ``(bands, rows, cols)`` or ``(rows, cols)`` as a GeoTIFF (test fixture helper)."""
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=CRS.from_user_input(crs) if crs else None,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)
        if descriptions:
            for i, d in enumerate(descriptions, start=1):
                ds.set_band_description(i, d)
    return path


@pytest.fixture
def raster_factory(tmp_path):
    """Call with (name, data, **kwargs) to write a GeoTIFF into tmp_path."""

    def factory(name: str, data: np.ndarray, **kwargs) -> Path:
        return make_raster(tmp_path / name, data, **kwargs)

    return factory


@pytest.fixture
def data_samples() -> Path:
    """The repository's data_samples folder (small real crops)."""
    return DATA_SAMPLES


# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder: each file goes whole to one of the
# two workers, in collection order, the next file to whichever worker is free. The longest files come first, so
# that the short ones fill in at the end and both workers finish together (xdist's default order, most tests
# first, put the two-test files of real processes last, where one of them ran alone on one worker). Ordered by
# the CPU seconds they took in one `make test` on 2 shared cores (2026-12-07); every other file (under 15 s each)
# keeps its collection order after these.
LONGEST_FIRST = (
    "test_batch.py",  # 57 s: a real Dask LocalCluster (two worker processes), SIGTERM to a predict process
    "test_training_processes.py",  # 32 s: SIGTERM to a training process, DDP with two processes
    "test_nir_pipeline.py",  # 30 s: two 90-step train-nir runs
    "test_nir_training.py",  # 19 s
    "test_bad_inputs.py",  # 18 s
    "test_training_lifecycle.py",  # 17 s
    "test_segmentation_cli.py",  # 17 s
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep collection order
