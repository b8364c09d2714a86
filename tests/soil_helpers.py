"""Small soil fixtures: a synthetic field (hill, valley, nodata corner) in UTM 37N, 5 m pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

TRANSFORM = Affine(5.0, 0.0, 416000.0, 0.0, -5.0, 5752000.0)
CRS = "EPSG:32637"
NODATA = -99999.0


def field_dem(rows: int = 36, cols: int = 44) -> np.ndarray:
    """A hill and a valley on a tilted plane (metres), with a nodata corner (NODATA)."""
    r, c = np.mgrid[0:rows, 0:cols].astype(float)
    z = 200 + 0.05 * c - 0.03 * r + 3 * np.exp(-((r - 10) ** 2 + (c - 12) ** 2) / 60) - 2 * np.exp(-((r - 25) ** 2 + (c - 32) ** 2) / 80)
    z[:6, -8:] = NODATA
    return z.astype(np.float32)


def write_field(tmp: Path, make_raster) -> dict[str, Path]:
    """DEM and NDVI-like covariate (with its own nodata hole) on the same grid; returns their paths."""
    dem = field_dem()
    r, c = np.mgrid[0 : dem.shape[0], 0 : dem.shape[1]].astype(float)
    ndvi = (0.3 + 0.4 * np.sin(c / 7.0) * np.cos(r / 9.0)).astype(np.float32)
    ndvi[20:24, 2:6] = NODATA
    return {
        "dem": make_raster(tmp / "dem.tif", dem, crs=CRS, transform=TRANSFORM, nodata=NODATA),
        "ndvi": make_raster(tmp / "ndvi.tif", ndvi, crs=CRS, transform=TRANSFORM, nodata=NODATA),
    }


def boundary_polygon(tmp: Path, name: str = "field.gpkg", crs: str = "EPSG:4326", shift_deg: float = 0.0) -> Path:
    """A rectangle over the left half of the field, written in ``crs`` (reprojected from UTM)."""
    import geopandas as gpd
    from shapely.geometry import box

    left, top = TRANSFORM.c, TRANSFORM.f
    poly = box(left + 20, top - 150, left + 100, top - 20)
    gdf = gpd.GeoDataFrame({"name": ["field"]}, geometry=[poly], crs=CRS).to_crs(crs)
    if shift_deg:
        gdf = gdf.set_geometry(gdf.geometry.translate(shift_deg, 0))
    gdf.to_file(tmp / name)
    return tmp / name
