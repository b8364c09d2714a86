"""Ground distances in metres for rasters in any CRS.

A pixel of a projected CRS is not always a pixel of that size on the ground: EPSG:3857 (Web Mercator)
stretches distances by 1 / cos(latitude), about 1.62 at 52 deg N, so a "5 m" Mercator pixel of the Kshen
field is 3.08 m on the ground. Geotool works in *local ground metres*: CRS coordinates multiplied by the
projection's scale factors at the raster centre (from :meth:`pyproj.Proj.get_factors`), or, for a
geographic CRS, degrees times the local length of a degree. This is exact at the centre and good to
much better than 1 % over a field or a farm (tens of km); it is not meant for continental rasters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geotool.errors import CRSError


@dataclass(frozen=True)
class GroundScale:
    """Metres on the ground per CRS unit along x (east) and y (north), at the raster centre."""

    mx: float
    my: float
    lon: float
    lat: float


def ground_scale(crs, x: float, y: float) -> GroundScale:
    """Local ground scale of ``crs`` at the CRS point (x, y).

    Args:
        crs: a rasterio/pyproj CRS (projected or geographic).
        x, y: a point in ``crs`` units (usually the raster centre).

    Returns:
        Metres per CRS unit along x and y, and the point's longitude/latitude (degrees, WGS 84).
    """
    from pyproj import CRS as PCRS
    from pyproj import Proj, Transformer

    if crs is None:
        raise CRSError("the raster has no CRS, so distances in metres are unknown; assign one first")
    pcrs = PCRS.from_user_input(crs)
    to_ll = Transformer.from_crs(pcrs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(x, y)
    if pcrs.is_geographic:
        phi = math.radians(lat)
        # lengths of a degree on the WGS 84 ellipsoid (metres)
        my = 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        mx = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
        return GroundScale(mx, my, lon, lat)
    unit = pcrs.axis_info[0].unit_conversion_factor if pcrs.axis_info else 1.0
    factors = Proj(pcrs).get_factors(lon, lat)
    # CRS distance (metres of the projection plane) = ground distance * scale factor
    return GroundScale(unit / factors.parallel_scale, unit / factors.meridional_scale, lon, lat)


def grid_ground_scale(grid) -> GroundScale:
    """Ground scale of a :class:`geotool.io.raster.Grid` at its centre."""
    left, bottom, right, top = grid.bounds
    return ground_scale(grid.crs, (left + right) / 2, (bottom + top) / 2)


def pixel_size_m(grid) -> tuple[float, float]:
    """Ground size of one pixel (metres along x, metres along y) at the raster centre."""
    s = grid_ground_scale(grid)
    rx, ry = grid.res
    return rx * s.mx, ry * s.my


def ground_xy(grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CRS coordinates -> local ground metres (origin at the raster centre, x east, y north)."""
    s = grid_ground_scale(grid)
    left, bottom, right, top = grid.bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    return (np.asarray(x, float) - cx) * s.mx, (np.asarray(y, float) - cy) * s.my


def lonlat(crs, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CRS coordinates -> WGS 84 longitude, latitude (degrees)."""
    from pyproj import Transformer

    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)
