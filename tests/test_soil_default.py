"""The robust default of soil-sample (issue #18): kernel maxvol on the covariates' hybrid scores.

Behaviour, on tiny synthetic fields: the hybrid, normal-score and robust spaces, the default design's
independence of units and its resistance to a gross outlier, the normal space's invariance to any increasing
transform of a covariate, the linear block and the nearest-neighbour bandwidth, and the CLI flags that keep
the earlier defaults reachable.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.config import sidecar_path
from geotool.soil.design import SoilSampleConfig, kernel_maxvol
from geotool.soil.features import fit_kernel_map, hybrid_scores, normal_scores, rank_uniformise, robust_scale


def _field(cells: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.lognormal(0, 1, cells), rng.standard_normal(cells), rng.random(cells)]).astype(np.float32)


def test_normal_scores_are_rank_based_and_standard_normal():
    X = _field()
    z = normal_scores(X)
    assert z.dtype == np.float32 and z.shape == X.shape
    assert np.allclose(z.mean(0), 0, atol=1e-3) and np.allclose(z.std(0), 1, atol=0.02)
    assert np.all(np.isfinite(z))
    # same order as the values, and the same scores after any increasing transform
    assert np.array_equal(np.argsort(z[:, 0], kind="stable"), np.argsort(X[:, 0], kind="stable"))
    Y = X.copy()
    Y[:, 0] = np.exp(Y[:, 0])
    assert np.allclose(normal_scores(Y), z)
    # a gross outlier scores exactly as a cell just above the maximum would: it cannot stretch the space
    far, near = X.copy(), X.copy()
    far[0, 1], near[0, 1] = 1e30, X[:, 1].max() + 0.01
    assert np.array_equal(normal_scores(far), normal_scores(near))
    assert normal_scores(far)[0, 1] < 4.0
    # a pool of rows gets the scores those rows have among all cells
    rows = np.array([5, 17, 2999])
    assert np.allclose(normal_scores(X, rows=rows), z[rows], atol=1e-6)


def test_robust_scale_is_clipped_and_ignores_outliers():
    X = _field().astype(np.float64)
    X[:10, 1] = 1e6  # outliers
    z = robust_scale(X, clip=3.0)
    assert np.abs(z).max() <= 3.0 + 1e-6
    assert np.allclose(z[:10, 1], 3.0)
    assert abs(float(np.median(z[:, 1]))) < 0.05
    # the scale of column 1 is set by the bulk: its clean cells look standard normal
    assert 0.8 < float(np.std(z[10:, 1])) < 1.2


def test_hybrid_scores_are_normal_scores_beside_clipped_z_scores():
    X = _field().astype(np.float64)
    h = hybrid_scores(X)
    assert h.dtype == np.float32 and h.shape == (len(X), 6)
    assert np.allclose(h[:, :3], normal_scores(X) / np.sqrt(2), atol=1e-6)
    z = (X - X.mean(0)) / X.std(0)
    assert np.allclose(h[:, 3:], np.clip(z, -4, 4) / np.sqrt(2), atol=1e-5)
    assert np.abs(h[:, 3]).max() == pytest.approx(4 / np.sqrt(2))  # the lognormal tail is clipped
    rows = np.array([4, 99, 2999])
    assert np.allclose(hybrid_scores(X, rows=rows), h[rows], atol=1e-6)


def test_default_design_ignores_units_and_normal_space_ignores_any_increasing_transform():
    X = _field()
    rows, size = kernel_maxvol(X, 20, seed=1)
    assert size == 20 and len(set(rows.tolist())) == 20
    affine = X.copy()
    affine[:, 2] = affine[:, 2] * 1000 + 5  # other units: the same z-scores and ranks
    assert np.array_equal(kernel_maxvol(affine, 20, seed=1)[0], rows)
    normal_rows = kernel_maxvol(X, 20, seed=1, space="normal", bandwidth=0.42)[0]
    Y = affine.copy()
    Y[:, 0] = np.log(Y[:, 0]) ** 3  # increasing: same ranks, very different z-scores
    assert np.array_equal(kernel_maxvol(Y, 20, seed=1, space="normal", bandwidth=0.42)[0], normal_rows)
    # z-score space is not invariant: the normal space's invariance is not an accident of the data
    z_rows = kernel_maxvol(X, 20, seed=1, space="standard")[0]
    assert not np.array_equal(kernel_maxvol(Y, 20, seed=1, space="standard")[0], z_rows)


def test_a_gross_outlier_does_not_capture_the_default_design():
    from scipy.spatial import cKDTree

    X = _field()
    bad = X.copy()
    bad[0, 1] = 1e6  # a DEM pit / edge artefact: 1e6 sd out
    clean_rows = kernel_maxvol(X, 20, seed=0)[0]
    rows = kernel_maxvol(bad, 20, seed=0)[0]
    assert 0 not in rows
    space = normal_scores(X)

    def coverage(r):  # mean distance from a cell to its nearest design point in normal-score space
        return cKDTree(space[r]).query(space)[0].mean()

    assert coverage(rows) < 1.3 * coverage(clean_rows)


def test_default_is_reproducible_and_honours_fixed_and_allowed():
    X = _field()
    allowed = np.ones(len(X), bool)
    allowed[:1000] = False
    a = kernel_maxvol(X, 15, fixed=[3, 7], allowed=allowed, seed=2)[0]
    assert np.array_equal(a, kernel_maxvol(X, 15, fixed=[3, 7], allowed=allowed, seed=2)[0])
    assert list(a[:2]) == [3, 7] and allowed[a[2:]].all() and len(set(a.tolist())) == 15


def test_linear_block_keeps_the_feature_count_square():
    X = _field()
    rows, size = kernel_maxvol(X, 20, seed=0, linear=1.0)
    assert size == 20 and len(set(rows.tolist())) == 20  # 1 intercept + 3 covariates + 16 landmarks
    with_lin = kernel_maxvol(X, 20, seed=0, linear=1.0, space="standard")[0]
    # the linear (D-optimal) block pulls the design towards the extremes of the z-scores
    z = (X - X.mean(0)) / X.std(0)
    assert np.abs(z[with_lin]).max(1).mean() > np.abs(z[kernel_maxvol(X, 20, seed=0, space="standard")[0]]).max(1).mean()


def test_nearest_neighbour_spacing_narrows_with_more_landmarks():
    ranks = rank_uniformise(_field())
    med = [fit_kernel_map(ranks, k, seed=0).sigma for k in (10, 80)]
    nn = [fit_kernel_map(ranks, k, seed=0, spacing="nn").sigma for k in (10, 80)]
    assert nn[1] < 0.7 * nn[0]  # shrinks roughly like k^(-1/d)
    assert med[1] > 0.7 * med[0]  # the median pairwise distance hardly moves
    assert nn[0] < med[0]


def test_config_defaults_and_cli_flags(raster_factory, tmp_path):
    cfg = SoilSampleConfig(n=5, output=tmp_path / "a.gpkg")
    assert cfg.kernel_space == "hybrid" and cfg.kernel_bandwidth == pytest.approx(0.3) and cfg.kernel_clip is None
    assert cfg.kernel_linear == 0 and cfg.kernel_spacing == "median" and cfg.refine == 0
    assert cfg.match_marginals == 0
    rng = np.random.default_rng(0)
    a = raster_factory("a.tif", rng.lognormal(0, 1, (30, 40)).astype(np.float32))
    b = raster_factory("b.tif", rng.standard_normal((30, 40)).astype(np.float32))
    runner = CliRunner()
    outs, reps = {}, {}
    for name, flags in {"default": [], "old": ["--kernel-space", "rank", "--kernel-bandwidth", "0.5"],
                        "robust": ["--kernel-space", "robust", "--kernel-clip", "2.5", "--kernel-spacing", "nn",
                                   "--kernel-bandwidth", "1.5"],
                        "linear": ["--kernel-linear", "0.5"], "matched": ["--match-marginals", "2"]}.items():
        out = tmp_path / f"{name}.csv"
        res = runner.invoke(app, ["soil-sample", str(a), str(b), "-n", "8", "--output", str(out), *flags])
        assert res.exit_code == 0, res.output
        outs[name] = out.read_text()
        sidecar = json.loads(sidecar_path(out).read_text())
        reps[name] = sidecar["results"]["representativeness"]
        assert f"covariate Wasserstein / sd {reps[name]['wasserstein_per_sd']:.3f}" in res.output
        cfg_json = sidecar["config"]
        if name == "robust":
            assert cfg_json["kernel_space"] == "robust" and cfg_json["kernel_clip"] == 2.5
    assert outs["default"] != outs["old"]
    assert outs["matched"] != outs["default"]
    # the sidecar says how well each design represents the field: matching the marginals shows there
    assert reps["matched"]["wasserstein_per_sd"] < reps["default"]["wasserstein_per_sd"]
    assert reps["matched"]["wasserstein_per_sd"] < reps["matched"]["random_median"]["wasserstein_per_sd"]
    assert reps["default"]["cells_compared"] == 30 * 40 and reps["default"]["random_designs"] == 20
    bad = runner.invoke(app, ["soil-sample", str(a), "-n", "8", "--output", str(tmp_path / "x.csv"),
                              "--kernel-space", "zscore"])
    assert bad.exit_code == 2 and "kernel_space" in (bad.output + str(bad.stderr_bytes or b""))
