"""Terrain covariates on known surfaces: tilted plane, cone, pit; ground pixel size of EPSG:3857."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from geotool.io.raster import Grid
from geotool.soil.geometry import pixel_size_m
from geotool.soil.terrain import (
    aspect_degrees,
    curvature,
    fill_depressions,
    flow_accumulation,
    slope_degrees,
    terrain_layers,
    twi,
)


def plane(rows=20, cols=30, sx=0.0, sy=0.0, dx=5.0, dy=5.0):
    """z = sx * east + sy * north (metres); north decreases with the row."""
    r, c = np.mgrid[0:rows, 0:cols].astype(float)
    return sx * c * dx + sy * (rows - 1 - r) * dy


def test_tilted_plane_slope_and_aspect_constant():
    # rises to the north by 10 %: faces south (180 deg), slope atan(0.1)
    z = plane(sy=0.1)
    valid = np.ones(z.shape, bool)
    s = slope_degrees(z, valid, 5.0, 5.0)
    a = aspect_degrees(z, valid, 5.0, 5.0)
    assert np.allclose(s, np.degrees(np.arctan(0.1)), atol=1e-9)
    assert np.allclose(a, 180.0, atol=1e-9)
    # rises to the west: faces east (90 deg)
    a2 = aspect_degrees(plane(sx=-0.2), valid, 5.0, 5.0)
    assert np.allclose(a2, 90.0, atol=1e-9)
    assert np.allclose(curvature(z, valid, 5.0, 5.0), 0.0, atol=1e-12)


def test_slope_uses_ground_pixel_size():
    z = plane(sy=0.1, dy=5.0)  # 0.5 m per row
    valid = np.ones(z.shape, bool)
    # the same elevations on 2.5 m pixels are twice as steep
    assert np.allclose(np.tan(np.radians(slope_degrees(z, valid, 2.5, 2.5))), 0.2)


def test_accumulation_grows_linearly_downslope_on_a_plane():
    z = plane(rows=25, cols=9, sy=0.05) + plane(rows=25, cols=9, sx=0.0001)  # tiny tilt breaks ties
    valid = np.ones(z.shape, bool)
    acc = flow_accumulation(z, valid, 5.0, 5.0)
    col = acc[1:-1, 4]  # interior column, north to south
    assert np.all(np.diff(col) == 1)  # one more cell per row downslope
    assert acc[0, 4] == 1


def test_cone_aspect_points_outward_and_peak_is_convex():
    r, c = np.mgrid[0:41, 0:41].astype(float)
    z = 100 - 0.5 * np.hypot(r - 20, c - 20)
    valid = np.ones(z.shape, bool)
    a = aspect_degrees(z, valid, 1.0, 1.0)
    assert a[20, 35] == pytest.approx(90.0, abs=1)  # east of the peak faces east
    assert a[5, 20] == pytest.approx(0.0, abs=1) or a[5, 20] == pytest.approx(360.0, abs=1)  # north faces north
    assert a[35, 20] == pytest.approx(180.0, abs=1)
    assert curvature(z, valid, 1.0, 1.0)[20, 20] > 0
    acc = flow_accumulation(z, valid, 1.0, 1.0)
    assert acc[20, 20] == 1  # nothing drains into the peak


def test_pit_is_filled_and_drains_to_the_edge():
    r, c = np.mgrid[0:21, 0:21].astype(float)
    z = 10 + 0.3 * np.hypot(r - 10, c - 10)  # an inverted cone: a closed depression
    valid = np.ones(z.shape, bool)
    filled = fill_depressions(z, valid)
    assert filled[10, 10] > z[10, 10]
    assert curvature(z, valid, 1.0, 1.0)[10, 10] < 0
    acc = flow_accumulation(z, valid, 1.0, 1.0)
    # every cell drains somewhere: the outlets' accumulations add up to all cells
    assert acc.max() > 1
    assert np.isfinite(twi(z, valid, 1.0, 1.0)).all()


def test_nodata_stays_nodata_and_edges_are_finite():
    z = plane(sy=0.1)
    valid = np.ones(z.shape, bool)
    valid[5:8, 10:14] = False
    z[~valid] = -99999
    layers = terrain_layers(z, valid, 5.0, 5.0)
    assert set(layers) == {"slope", "aspect_sin", "aspect_cos", "curvature", "twi"}
    for arr in layers.values():
        assert np.isnan(arr[~valid]).all()
        assert np.isfinite(arr[valid]).all()
    # the hole does not poison its neighbours' slope
    assert np.allclose(layers["slope"][valid], np.degrees(np.arctan(0.1)))


def test_web_mercator_pixels_are_scaled_to_ground_metres():
    grid = Grid("EPSG:3857", Affine(5.0, 0, 4207079.7, 0, -5.0, 6783461.1), 300, 200)
    dx, dy = pixel_size_m(grid)
    lat = 51.904  # the Kshen field
    assert dx == pytest.approx(5 * np.cos(np.radians(lat)), rel=1e-3)
    assert dy == pytest.approx(dx, rel=1e-3)
    utm = Grid("EPSG:32637", Affine(5.0, 0, 416000, 0, -5.0, 5752000), 100, 100)
    assert pixel_size_m(utm)[0] == pytest.approx(5.0, rel=2e-3)  # UTM scale factor ~0.9996..1.0004
