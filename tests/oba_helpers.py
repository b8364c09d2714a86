"""Synthetic scenes for the OBA tests: a textured 3-band uint16 raster in UTM with nodata and labelled boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from geotool.io.raster import Grid, write_raster
from geotool.io.vector import write_vector

UTM = CRS.from_epsg(32633)


def make_scene(
    folder: Path,
    name: str = "scene.tif",
    size: tuple[int, int] = (160, 200),
    res: float = 1.0,
    bands: int = 3,
    origin: tuple[float, float] = (500000.0, 5000000.0),
    seed: int = 0,
    nodata_cols: int = 6,
) -> tuple[Path, Grid]:
    """A ``rows x cols`` uint16 scene, nodata 0 in the last ``nodata_cols`` columns."""
    rng = np.random.default_rng(seed)
    rows, cols = size
    grid = Grid(UTM, Affine(res, 0, origin[0], 0, -res, origin[1]), cols, rows)
    data = rng.integers(200, 1200, size=(bands, rows, cols)).astype(np.uint16)
    if nodata_cols:
        data[:, :, -nodata_cols:] = 0
    path = write_raster(folder / name, data, grid, nodata=0)
    return path, grid


def box_labels(grid: Grid, boxes, classes=None, crs=None):
    """Polygons for pixel boxes ``(row, col, h, w)`` on ``grid`` with a ``cls`` column, optionally reprojected."""
    import geopandas as gpd
    from shapely.geometry import box

    geoms = []
    for r, c, h, w in boxes:
        x0, y0 = grid.transform * (c, r + h)
        x1, y1 = grid.transform * (c + w, r)
        geoms.append(box(x0, y0, x1, y1))
    gdf = gpd.GeoDataFrame({"cls": classes or [1] * len(geoms)}, geometry=geoms, crs=grid.crs)
    return gdf.to_crs(crs) if crs is not None else gdf


def write_labels(gdf, path: Path) -> Path:
    """Write labels (GeoPackage/GeoJSON by extension)."""
    return write_vector(gdf, path)


# Objects in the top-left quarter of a 160 x 200 scene, leaving the rest label-free.
BOXES = [(5, 5, 8, 10), (20, 8, 6, 6), (8, 30, 10, 7), (30, 30, 5, 12), (40, 5, 7, 7), (12, 50, 9, 9)]
CLASSES = [1, 1, 1, 2, 1, 2]
