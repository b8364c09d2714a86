"""`geotool soil-sample` and `geotool soil-evaluate` end to end, including every bad input."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from scipy.spatial.distance import pdist
from shapely.geometry import Point, box
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.config import sidecar_path

runner = CliRunner()
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0)  # UTM 33N, 10 m


@pytest.fixture
def field(raster_factory):
    """Three 40x50 covariates on one grid with a nodata hole and a nodata corner."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:50]
    dem = (100 + 0.3 * yy + 0.1 * xx + rng.normal(0, 0.2, (40, 50))).astype(np.float32)
    ndvi = (0.5 + 0.3 * np.sin(xx / 7) + rng.normal(0, 0.02, (40, 50))).astype(np.float32)
    clay = (20 + 5 * np.cos(yy / 5) + rng.normal(0, 0.5, (40, 50))).astype(np.float32)
    for arr in (dem, ndvi, clay):
        arr[10:15, 20:30] = -9999
    ndvi[:5, :5] = -9999
    return {
        "dem": raster_factory("dem.tif", dem, nodata=-9999),
        "ndvi": raster_factory("ndvi.tif", ndvi, nodata=-9999),
        "clay": raster_factory("clay.tif", clay, nodata=-9999),
    }


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _read(path):
    return gpd.read_file(path)


def test_exact_n_points_on_valid_cells_with_georeference(field, tmp_path):
    out = tmp_path / "pts.gpkg"
    result = _run("soil-sample", field["ndvi"], field["clay"], "--dem", field["dem"], "--terrain", "slope,aspect,twi",
                  "-n", 25, "--output", out, "--plot", tmp_path / "map.png")
    assert result.exit_code == 0, result.output
    pts = _read(out)
    assert len(pts) == 25 and pts.crs.to_epsg() == 32633
    assert len(set(zip(pts["row"], pts["col"]))) == 25
    # points land on the cells they claim: coordinates round-trip to row/col
    inv = ~T
    cols, rows = inv * (pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    assert np.array_equal(np.floor(rows).astype(int), pts["row"]) and np.array_equal(np.floor(cols).astype(int), pts["col"])
    assert np.allclose(pts["x"], pts.geometry.x) and np.allclose(pts["y"], pts.geometry.y)
    # never on nodata: not in the hole, not in the ndvi corner
    assert not ((pts["row"].between(10, 14)) & (pts["col"].between(20, 29))).any()
    assert not ((pts["row"] < 5) & (pts["col"] < 5)).any()
    with rasterio.open(field["ndvi"]) as ds:
        values = ds.read(1)[pts["row"], pts["col"]]
    assert np.allclose(values, pts["ndvi"]) and (values != -9999).all()
    assert {"lon", "lat", "order", "nearest_m", "elevation", "slope", "aspect_sin", "twi"} <= set(pts.columns)
    assert pts["order"].tolist() == list(range(1, 26))
    assert (tmp_path / "map.png").stat().st_size > 10_000
    side = json.loads((tmp_path / "pts.gpkg.json").read_text())
    assert side["command"] == "soil-sample" and side["results"]["n_points"] == 25
    assert set(side["inputs"]) == {str(field["ndvi"]), str(field["clay"]), str(field["dem"])}


@pytest.mark.parametrize("method", ["maxvol", "random", "clhs", "kmeans"])
def test_min_distance_boundary_and_legacy_for_every_method(field, tmp_path, method):
    boundary = tmp_path / "field.geojson"
    gpd.GeoDataFrame(geometry=[box(500050, 5099650, 500450, 5099950)], crs=32633).to_crs(4326).to_file(boundary)
    legacy = tmp_path / "old.gpkg"
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=[Point(500065, 5099985), Point(500255, 5099705)], crs=32633).to_file(legacy)
    out = tmp_path / f"{method}.csv"
    result = _run("soil-sample", field["ndvi"], field["clay"], "--dem", field["dem"], "-n", 15, "--output", out,
                  "--boundary", boundary, "--existing", legacy, "--min-distance", 45, "--method", method,
                  "--seed", 3)
    assert result.exit_code == 0, result.output
    pts = pd.read_csv(out)
    assert len(pts) == 15 and pts["crs"].iloc[0] == "EPSG:32633"
    assert pts["legacy"].tolist()[:2] == [True, True] and not pts["legacy"][2:].any()
    assert sorted(zip(pts["row"][:2], pts["col"][:2])) == [(1, 6), (29, 25)]
    new = pts[~pts["legacy"]]
    assert new["x"].between(500050, 500450).all() and new["y"].between(5099650, 5099950).all()
    # distances are ground metres: UTM map metres x 1/0.9996 at the central meridian
    assert pts["nearest_m"].min() >= 45 and pdist(pts[["x", "y"]].to_numpy()).min() >= 45 * 0.9996
    xy = pts[["x", "y"]].to_numpy()
    map_nearest = np.sort(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)), axis=1)[:, 1]
    assert np.allclose(pts["nearest_m"], map_nearest / 0.9996, rtol=2e-4)


def test_same_seed_same_file(field, tmp_path):
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "pts.geojson"  # same name: GeoJSON stores the layer name
        assert _run("soil-sample", field["ndvi"], field["clay"], "-n", 12, "--method", "clhs", "--seed", 11,
                    "--output", out).exit_code == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    other = tmp_path / "c" / "pts.geojson"
    _run("soil-sample", field["ndvi"], field["clay"], "-n", 12, "--method", "clhs", "--seed", 12, "--output", other)
    assert other.read_bytes() != outs[0]


def test_shapefile_output(field, tmp_path):
    out = tmp_path / "pts.shp"
    assert _run("soil-sample", field["ndvi"], "-n", 5, "--output", out).exit_code == 0
    assert len(_read(out)) == 5 and _read(out).crs.to_epsg() == 32633


def _assert_clean_failure(result, tmp_path, *needles):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    assert not list(tmp_path.glob("out*")), "a failed run left output behind"


def test_missing_file(field, tmp_path):
    _assert_clean_failure(_run("soil-sample", tmp_path / "nope.tif", "-n", 5, "--output", tmp_path / "out.gpkg"),
                          tmp_path, "nope.tif", "no such raster")


def test_non_raster_file(field, tmp_path):
    fake = tmp_path / "fake.tif"
    fake.write_text("not a raster")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], fake, "-n", 5, "--output", tmp_path / "out.gpkg"),
                          tmp_path, "fake.tif", "not a readable raster")


def test_crs_mismatch_between_layers(field, raster_factory, tmp_path):
    other = raster_factory("utm34.tif", np.ones((40, 50), np.float32), crs="EPSG:32634")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], other, "-n", 5, "--output", tmp_path / "out.gpkg"),
                          tmp_path, "utm34.tif", "EPSG:32634 instead of EPSG:32633", "--resample")


def test_boundary_not_overlapping(field, tmp_path):
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame(geometry=[box(10, 10, 11, 11)], crs=4326).to_file(far)
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--boundary", far, "--output", tmp_path / "out.gpkg"),
                          tmp_path, "far.gpkg", "does not overlap")


def test_n_larger_than_feasible(field, tmp_path):
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 500, "--min-distance", 100,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "could be placed", "of 500")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5000, "--output", tmp_path / "out.gpkg"),
                          tmp_path, "5000", "valid")


def test_legacy_point_on_nodata(field, tmp_path):
    legacy = tmp_path / "old.gpkg"
    gpd.GeoDataFrame(geometry=[Point(500015, 5099985)], crs=32633).to_file(legacy)  # the ndvi nodata corner
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--existing", legacy,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "old.gpkg", "nodata")


def test_bad_options_are_clean(field, tmp_path):
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--output", tmp_path / "out.txt"), tmp_path, "out.txt")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--method", "best", "--output", tmp_path / "out.gpkg"),
                          tmp_path, "method")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "--output", tmp_path / "out.gpkg"), tmp_path, "missing setting n")


def test_real_field_with_resampled_ndvi(data_samples, tmp_path):
    soil = data_samples / "soil"
    out = tmp_path / "pts.gpkg"
    result = _run("soil-sample", soil / "slope.tif", soil / "ndvi.tif", "--dem", soil / "dem.tif", "--terrain", "twi",
                  "-n", 15, "--output", out, "--min-distance", 50)
    assert result.exit_code == 2 and "ndvi.tif is not on the grid" in result.output
    result = _run("soil-sample", soil / "slope.tif", soil / "ndvi.tif", "--dem", soil / "dem.tif", "--terrain", "twi",
                  "-n", 15, "--output", out, "--min-distance", 50, "--resample", "bilinear")
    assert result.exit_code == 0, result.output
    pts = _read(out)
    assert len(pts) == 15 and pts.crs.to_epsg() == 3857 and pts["nearest_m"].min() >= 50


def test_soil_evaluate_on_kshen(data_samples, tmp_path):
    out = tmp_path / "eval.csv"
    result = _run("--log-file", tmp_path / "run.log", "soil-evaluate", data_samples / "soil" / "kshen_data.csv", "--x-column", "LON", "--y-column", "LAT",
                  "--crs", "EPSG:32637", "--covariate", data_samples / "soil" / "dem.tif", "--covariate",
                  data_samples / "soil" / "slope.tif", "-k", "10,20", "--repeats", 3, "--output", out)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out)
    assert set(summary["method"]) == {"maxvol", "clhs", "random"}
    assert "Moisture_perc_10" in set(summary["property"]) and "Point" not in set(summary["property"])
    assert (summary["ks"].between(0, 1)).all() and (summary["wasserstein"] >= 0).all()
    designs = pd.read_csv(tmp_path / "eval_designs.csv")
    assert designs.groupby("method")["repeat"].nunique().to_dict() == {"maxvol": 1, "clhs": 3, "random": 3}
    assert (tmp_path / "eval.png").exists() and "maxvol" in result.output
    log = (tmp_path / "run.log").read_text()  # progress of a long run, method by method, for a batch log
    assert all(f"soil-evaluate: {m} scored at k = 10,20" in log for m in ("maxvol", "clhs", "random"))


def test_soil_evaluate_maxvol_is_soil_sample_s_default_unless_the_paper_s_features_are_asked_for(data_samples, tmp_path):
    log_det = {}
    for name, flags in {"kernel": [], "linear": ["--features", "linear"], "matched": ["--match-marginals", "2"]}.items():
        out = tmp_path / f"{name}.csv"
        result = _run("soil-evaluate", data_samples / "soil" / "kshen_data.csv", "--x-column", "LON", "--y-column", "LAT",
                      "--crs", "EPSG:32637", "--covariate", data_samples / "soil" / "dem.tif", "--covariate",
                      data_samples / "soil" / "slope.tif", "--methods", "maxvol", "-k", "10", *flags, "--output", out)
        assert result.exit_code == 0, result.output
        log_det[name] = pd.read_csv(out)["log_det"].iloc[0]
        assert json.loads(sidecar_path(out).read_text())["config"]["features"] == ("linear" if name == "linear" else "kernel")
    # the paper's linear maxvol is D-optimal: a larger D-criterion than the default's typical cells
    assert log_det["linear"] > log_det["kernel"] + 0.3 and log_det["matched"] != log_det["kernel"]


def test_soil_evaluate_scores_a_design_file(data_samples, tmp_path):
    kshen = pd.read_csv(data_samples / "soil" / "kshen_data.csv", encoding="utf-8-sig")
    chosen = kshen.iloc[[0, 5, 10, 20, 30, 40]]
    design = tmp_path / "design.gpkg"
    gpd.GeoDataFrame(geometry=gpd.points_from_xy(chosen["LON"] + 1, chosen["LAT"] - 1), crs=32637).to_file(design)
    out = tmp_path / "eval.csv"
    result = _run("soil-evaluate", data_samples / "soil" / "kshen_data.csv", "--x-column", "LON", "--y-column", "LAT",
                  "--crs", "EPSG:32637", "--methods", "random", "-k", "6", "--repeats", 2, "--design", design,
                  "--output", out)
    assert result.exit_code == 0, result.output
    designs = pd.read_csv(tmp_path / "eval_designs.csv")
    assert set(designs.loc[designs["method"] == "design", "k"]) == {6}


def test_soil_evaluate_csv_needs_crs(data_samples, tmp_path):
    result = _run("soil-evaluate", data_samples / "soil" / "kshen_data.csv", "--x-column", "LON", "--y-column", "LAT",
                  "--output", tmp_path / "out.csv")
    _assert_clean_failure(result, tmp_path, "--crs")


def test_soil_evaluate_takes_a_soil_sample_file_without_its_point_columns(tmp_path):
    import geopandas as gpd
    import numpy as np

    from geotool.io.vector import write_vector
    from geotool.soil.evaluate import SoilEvaluateConfig, load_measured

    rng = np.random.default_rng(0)
    n = 12
    x, y = 500000 + rng.uniform(0, 1000, n), 5000000 + rng.uniform(0, 1000, n)
    frame = gpd.GeoDataFrame({"order": np.arange(1, n + 1), "legacy": [False] * n, "row": rng.integers(0, 99, n),
                              "col": rng.integers(0, 99, n), "x": x, "y": y, "lon": rng.uniform(14, 15, n),
                              "lat": rng.uniform(45, 46, n), "slope": rng.uniform(0, 9, n), "som": rng.uniform(1, 5, n),
                              "nearest_m": rng.uniform(50, 90, n)}, geometry=gpd.points_from_xy(x, y), crs="EPSG:32633")
    path = write_vector(frame, tmp_path / "points.gpkg")
    _, props = load_measured(SoilEvaluateConfig(measured=path, output=tmp_path / "t.csv"))
    assert props == ["slope", "som"]
