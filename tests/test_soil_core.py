"""Soil science core: terrain on known surfaces, maxvol optimality and constraints, baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from geotool.errors import InfeasibleError
from geotool.soil import terrain
from geotool.soil.baselines import clhs_design, kmeans_design, random_design
from geotool.soil.features import design_matrix
from geotool.soil.maxvol import design_log_det, maxvol_select


def _plane(rows=20, cols=15, drop_per_row=0.5, dx=2.0):
    """A plane falling to the south by drop_per_row metres per row of dx metres."""
    return np.tile((np.arange(rows, 0, -1) * drop_per_row)[:, None], (1, cols)).astype(float), dx


def test_plane_slope_and_aspect():
    dem, dx = _plane()
    slope = terrain.slope_degrees(dem, dx, dx)
    assert np.allclose(slope[1:-1, 1:-1], np.degrees(np.arctan(0.5 / 2.0)))
    sin_a, cos_a = terrain.aspect_sin_cos(dem, dx, dx)
    assert np.allclose(cos_a[1:-1, 1:-1], -1.0) and np.allclose(sin_a[1:-1, 1:-1], 0.0)  # faces south
    assert np.allclose(terrain.curvature(dem, dx, dx)[1:-1, 1:-1], 0.0)


def test_d8_accumulation_on_a_plane_grows_linearly_downslope():
    dem, dx = _plane()
    acc = terrain.flow_accumulation(dem, dx, dx, "d8")
    assert np.array_equal(acc[:, 7], np.arange(1, 21))


def test_mfd_accumulation_conserves_area_on_a_plane():
    dem, dx = _plane(rows=30, cols=41)
    acc = terrain.flow_accumulation(dem, dx, dx, "mfd")
    # far from the side edges, each row passes on everything above it
    assert np.allclose(acc[:, 20], np.arange(1, 31), rtol=0.02)


def test_pit_is_filled_so_water_passes_through():
    # a bowl whose only outlet is one cell in the south rim
    yy, xx = np.mgrid[0:21, 0:21]
    dem = np.hypot(yy - 10, xx - 10).astype(float)
    dem[20, 10] = -1.0  # outlet
    acc = terrain.flow_accumulation(dem, 1.0, 1.0, "d8")
    interior = dem.size - 4 * 20  # border cells drain off the grid themselves
    assert acc[20, 10] >= interior
    filled, order = terrain.fill_depressions(dem)
    assert (filled >= dem - 1e-12).all() and len(order) == dem.size


def test_twi_is_high_in_valleys_low_on_ridges_and_nodata_stays_nodata():
    yy, xx = np.mgrid[0:40, 0:40]
    dem = np.abs(xx - 20).astype(float) + 0.2 * (40 - yy)  # a V-shaped valley running south
    dem[0, 0] = np.nan
    twi = terrain.topographic_wetness_index(dem, 5.0, 5.0)
    assert np.isnan(twi[0, 0])
    assert twi[30, 20] > twi[30, 5] + 2


def test_web_mercator_pixels_are_shorter_on_the_ground():
    import rasterio
    from affine import Affine

    from geotool.io.raster import Grid

    grid = Grid(rasterio.crs.CRS.from_epsg(3857), Affine(5, 0, 4207077, 0, -5, 6783463), 300, 200)
    dx, dy = terrain.ground_pixel_size(grid)
    lat = np.radians(51.89)  # the Kshen field
    assert dx == pytest.approx(5 * np.cos(lat), rel=2e-3) and dy == pytest.approx(dx, rel=1e-3)
    utm = Grid(rasterio.crs.CRS.from_epsg(32637), Affine(5, 0, 417000, 0, -5, 5751000), 10, 10)
    assert terrain.ground_pixel_size(utm)[0] == pytest.approx(5, rel=1e-3)


def test_maxvol_matches_brute_force_on_small_problems():
    rng = np.random.default_rng(3)
    for n in (3, 5):
        A = rng.standard_normal((12, 3))
        best = max(design_log_det(A, np.array(c)) for c in itertools.combinations(range(12), n))
        assert maxvol_select(A, n).log_det >= best - 0.35  # greedy + swaps: within a few % of the optimum
    A = rng.standard_normal((12, 3))
    best3 = max(design_log_det(A, np.array(c)) for c in itertools.combinations(range(12), 3))
    assert maxvol_select(A, 3).log_det == pytest.approx(best3, abs=0.25)


@pytest.mark.parametrize("n", [2, 6, 40, 300])
def test_exact_n_distinct_rows_below_at_and_far_above_the_features(n):
    A = np.random.default_rng(0).standard_normal((2000, 6))
    sel = maxvol_select(A, n)
    assert len(sel.rows) == n and len(np.unique(sel.rows)) == n


def test_maxvol_beats_random_designs():
    rng = np.random.default_rng(1)
    A, _, _ = design_matrix(rng.standard_normal((5000, 4)), list("abcd"))
    ours = maxvol_select(A, 20).log_det
    randoms = [design_log_det(A, rng.choice(5000, 20, replace=False)) for _ in range(200)]
    assert ours > max(randoms)


def test_fixed_rows_kept_first_and_min_distance_everywhere():
    rng = np.random.default_rng(2)
    coords = rng.random((3000, 2)) * 1000
    A = rng.standard_normal((3000, 4))
    sel = maxvol_select(A, 30, fixed=[5, 7], coords=coords, min_distance=90)
    assert sel.rows[:2].tolist() == [5, 7] and len(set(sel.rows)) == 30
    assert pdist(coords[sel.rows]).min() >= 90
    with pytest.raises(InfeasibleError, match=r"only \d+ of 500 points could be placed"):
        maxvol_select(A, 500, coords=coords, min_distance=90)


def test_allowed_mask_restricts_new_points():
    A = np.random.default_rng(4).standard_normal((500, 3))
    allowed = np.zeros(500, bool)
    allowed[100:200] = True
    sel = maxvol_select(A, 10, fixed=[3], allowed=allowed)
    assert sel.rows[0] == 3 and all(100 <= r < 200 for r in sel.rows[1:])


def test_design_matrix_reports_constant_and_collinear_columns():
    rng = np.random.default_rng(5)
    a = rng.random(100)
    values = np.column_stack([a, np.full(100, 7.0), 2 * a + 3, rng.random(100)])
    A, report, names = design_matrix(values, ["a", "const", "a_twice", "b"])
    assert report.constant == ["const"] and report.collinear == ["a_twice"]
    assert names == ["intercept", "a", "b"] and np.allclose(A[:, 1].mean(), 0, atol=1e-6)
    quad, _, qnames = design_matrix(values, ["a", "const", "a_twice", "b"], "quadratic")
    assert qnames == ["intercept", "a", "b", "a*a", "a*b", "b*b"] and quad.shape == (100, 6)


def test_baselines_exact_n_distinct_seeded_and_spaced():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((2000, 3))
    coords = rng.random((2000, 2)) * 1000
    for fn in (lambda r: random_design(2000, 25, r, [0], coords, 60),
               lambda r: clhs_design(X, 25, r, [0], coords, 60, iterations=500),
               lambda r: kmeans_design(X, 25, r, [0], coords, 60)):
        a, b = fn(np.random.default_rng(9)), fn(np.random.default_rng(9))
        assert np.array_equal(a, b) and len(set(a)) == 25 and a[0] == 0
        assert pdist(coords[a]).min() >= 60


def test_clhs_fills_strata_and_swaps_despite_a_constant_column():
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.standard_normal(5000), rng.standard_normal(5000), np.full(5000, 3.0)])
    sample = clhs_design(X, 20, np.random.default_rng(0), iterations=3000)
    edges = np.quantile(X[:, 0], np.linspace(0, 1, 21)[1:-1])
    counts = np.bincount(np.searchsorted(edges, X[sample, 0], side="right"), minlength=20)
    start = random_design(5000, 20, np.random.default_rng(0))
    start_counts = np.bincount(np.searchsorted(edges, X[start, 0], side="right"), minlength=20)
    assert not np.array_equal(np.sort(sample), np.sort(start))  # it swapped
    assert np.abs(counts - 1).sum() < np.abs(start_counts - 1).sum()
    assert np.abs(counts - 1).sum() <= 4


def test_default_kernel_design_picks_typical_cells_not_extremes():
    from scipy.stats import wasserstein_distance

    from geotool.soil.design import kernel_maxvol

    rng = np.random.default_rng(8)
    values = np.column_stack([rng.lognormal(0, 1, 20000), rng.standard_t(2, 20000)])  # heavy tails
    A_lin, _, _ = design_matrix(values, ["a", "b"])
    rows, size = kernel_maxvol(A_lin[:, 1:], 20, seed=0)
    assert size == 20 and len(set(rows.tolist())) == 20
    assert np.array_equal(rows, kernel_maxvol(A_lin[:, 1:], 20, seed=0)[0])

    from scipy.stats import rankdata

    ranks = np.column_stack([rankdata(values[:, j]) / len(values) for j in range(2)])

    def mean_w(rows):  # coverage of each covariate's distribution, measured on its quantiles
        return np.mean([wasserstein_distance(ranks[rows, j], ranks[:, j]) for j in range(2)])

    w_kernel = mean_w(rows)
    w_linear = mean_w(maxvol_select(A_lin, 20).rows)
    w_random = np.median([mean_w(rng.choice(20000, 20, replace=False)) for _ in range(50)])
    assert w_random < w_linear and w_kernel < w_linear / 2  # polynomial maxvol goes to the extremes
    assert w_kernel < 1.5 * w_random  # the kernel design covers the distribution about as well as random
