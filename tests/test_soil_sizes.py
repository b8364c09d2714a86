"""soil-evaluate --sizes (sample-size advice) and soil-sample on the Xuancheng crop in data_samples."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.errors import ConfigError
from geotool.soil.sizes import Representativeness, parse_sizes

runner = CliRunner()
XUANCHENG = ["dem", "slope", "twi", "plan_curvature", "profile_curvature", "temperature", "precipitation"]


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_parse_sizes():
    assert parse_sizes("10:100:10") == list(range(10, 101, 10))
    assert parse_sizes("30,10,20,10") == [10, 20, 30]
    for bad in ("10:100", "a:b:c", "1,5", "10:100:0"):
        with pytest.raises(ConfigError):
            parse_sizes(bad)


def test_representativeness_metrics_match_scipy():
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import ks_2samp, wasserstein_distance

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(3000), rng.lognormal(0, 1, 3000)]).astype(np.float32)
    X = (X - X.mean(0)) / X.std(0)
    rep = Representativeness(X)
    rows = rng.choice(3000, 40, replace=False)
    w, ks, js = rep.scores(rows)
    Xd = X.astype(np.float64)
    assert np.isclose(w, np.mean([wasserstein_distance(Xd[rows, j], Xd[:, j]) for j in range(2)]), rtol=1e-3)
    assert np.isclose(ks, np.mean([ks_2samp(Xd[rows, j], Xd[:, j]).statistic for j in range(2)]), atol=1e-9)
    ref = np.mean([jensenshannon(np.histogram(Xd[rows, j], rep.edges[j])[0], rep.pop_hist[j], base=2) ** 2
                   for j in range(2)])
    assert np.isclose(js, ref, atol=1e-6)
    assert rep.scores(np.arange(3000))[0] < 1e-6  # the whole population represents itself


@pytest.fixture
def xuancheng(data_samples):
    folder = data_samples / "soil_xuancheng"
    if not folder.exists():
        pytest.skip("data_samples/soil_xuancheng missing")
    return folder


def test_size_advice_table_and_png_on_the_xuancheng_crop(xuancheng, tmp_path):
    out = tmp_path / "sizes.csv"
    args = ["soil-evaluate", "--sizes", "10:20:10", "-o", out]
    for name in XUANCHENG[:3]:
        args += ["--covariate", xuancheng / f"{name}.tif"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert sorted(set(table["n"])) == [10, 20] and len(table) == 4
    design = table[table["design"] == "maxvol (default)"].set_index("n")
    assert design["log_det"].is_monotonic_increasing  # more points, more information
    assert (tmp_path / "sizes.png").stat().st_size > 10_000 and (tmp_path / "sizes.csv.json").exists()
    bad = _run("soil-evaluate", "--sizes", "10:30", "-o", tmp_path / "x.csv", "--covariate", xuancheng / "dem.tif")
    assert bad.exit_code == 2 and "--sizes" in bad.output and not (tmp_path / "x.csv").exists()
    nocov = _run("soil-evaluate", "--sizes", "10:30:10", "-o", tmp_path / "x.csv")
    assert nocov.exit_code == 2 and "--covariate" in nocov.output


def test_soil_sample_on_the_xuancheng_crop_with_backups(xuancheng, tmp_path):
    out = tmp_path / "pts.gpkg"
    covs = [xuancheng / f"{n}.tif" for n in XUANCHENG]
    result = _run("soil-sample", *covs, "-n", 15, "--min-distance", 1000, "--backups", 2, "--output", out)
    assert result.exit_code == 0, result.output
    pts = gpd.read_file(out)
    assert len(pts) == 15 and pts.crs.to_epsg() == 32650
    with rasterio.open(covs[0]) as src:
        dem = src.read(1)
        cols_f, rows_f = ~src.transform * (pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    rows, cols = np.floor(rows_f).astype(int), np.floor(cols_f).astype(int)
    assert np.array_equal(rows, pts["row"]) and np.array_equal(cols, pts["col"])
    assert np.allclose(dem[rows, cols], pts["dem"])  # the value written is the value of the cell claimed
    assert len(gpd.read_file(tmp_path / "pts_backups.gpkg")) == 30


def test_design_representativeness_compares_with_random_designs_on_a_bounded_sample():
    from geotool.soil.sizes import design_representativeness

    rng = np.random.default_rng(5)
    X = rng.standard_normal((50_000, 3))
    allowed = np.ones(len(X), bool)
    allowed[:10_000] = False
    extremes = np.argsort(-np.abs(X[:, 0]))[:20]
    typical = rng.choice(np.flatnonzero(allowed), 20, replace=False)
    rep = design_representativeness(X, extremes, allowed, max_cells=5_000)
    assert rep["cells_compared"] == 5_000 and rep["random_designs"] == 20
    assert rep["wasserstein_per_sd"] > 2 * rep["random_median"]["wasserstein_per_sd"]  # extremes: far worse
    assert rep["ks"] > rep["random_median"]["ks"] and rep["jsd"] > rep["random_median"]["jsd"]
    same = design_representativeness(X, typical, allowed, max_cells=5_000)
    assert same["wasserstein_per_sd"] < 2 * same["random_median"]["wasserstein_per_sd"]
    assert design_representativeness(X, typical, allowed, max_cells=5_000) == same  # seeded
