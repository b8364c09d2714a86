"""Covariate layers on one grid: read rasters, derive terrain from the DEM, mask nodata and boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geotool.errors import ConfigError, EmptyDataError
from geotool.soil.config import FeatureConfig


@dataclass
class CovariateGrid:
    """Covariate layers ``(k, rows, cols)`` float64 on ``grid``, with the cells valid in every layer."""

    data: np.ndarray
    names: list[str]
    valid: np.ndarray
    grid: object
    dem: np.ndarray | None
    paths: list[Path] = field(default_factory=list)
    pixel_m: tuple[float, float] = (1.0, 1.0)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def load_covariates(cfg: FeatureConfig) -> CovariateGrid:
    """Read every covariate (and the DEM, first, as the reference grid) and derive terrain layers.

    Nodata in any layer excludes the cell; terrain is computed on the DEM's own valid cells with the
    ground pixel size in metres (see :mod:`geotool.soil.geometry`).
    """
    from geotool.io.raster import read_stack
    from geotool.soil.geometry import pixel_size_m
    from geotool.soil.terrain import terrain_layers

    if cfg.dem is None and not cfg.covariates:
        raise ConfigError("no covariates: give covariate GeoTIFFs and/or --dem dem.tif")
    paths = ([cfg.dem] if cfg.dem is not None else []) + list(cfg.covariates)
    stack = read_stack(paths, nodata=cfg.nodata, resample=cfg.resample, dtype="float64")
    grid = stack.grid
    dx, dy = pixel_size_m(grid)
    layers: list[np.ndarray] = []
    names: list[str] = []
    valid = stack.valid.copy()
    names_in = [Path(p).stem for p in stack.paths] if len(stack.band_names) == len(stack.paths) else stack.band_names
    dem = None
    for i, (name, band) in enumerate(zip(names_in, stack.data)):
        if cfg.dem is not None and i == 0:
            dem = band
            if not cfg.elevation:
                continue
            name = "elevation"
        layers.append(band)
        names.append(name)
    if dem is not None and cfg.terrain:
        dem_only = read_stack([cfg.dem], nodata=cfg.nodata, dtype="float64")
        for name, arr in terrain_layers(dem_only.data[0], dem_only.valid, dx, dy, cfg.terrain).items():
            layers.append(arr)
            names.append(name)
            valid &= np.isfinite(arr)
    if not layers:
        raise ConfigError("no covariate left: --no-elevation with an empty --terrain and no covariate files")
    data = np.stack(layers)
    valid &= np.isfinite(data).all(axis=0)
    if not valid.any():
        raise EmptyDataError(
            f"no cell is valid in every layer of {', '.join(map(str, paths))}; check nodata values and that the layers overlap"
        )
    return CovariateGrid(data, _unique(names), valid, grid, dem, list(stack.paths), (dx, dy))
