"""soil-sample / soil-evaluate end to end through the CLI, on fixtures in tmp_path and data_samples/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from soil_helpers import CRS, NODATA, TRANSFORM, boundary_polygon, write_field

runner = CliRunner()


@pytest.fixture
def field(tmp_path, raster_factory):
    from conftest import make_raster

    return write_field(tmp_path, make_raster)


def sample(field, out: Path, *extra: str):
    args = ["soil-sample", str(field["ndvi"]), "--dem", str(field["dem"]), "-o", str(out), *extra]
    return runner.invoke(app, args)


def read_points(path: Path):
    from geotool.io.vector import read_vector

    return read_vector(path)


def test_exact_n_on_valid_cells_coordinates_round_trip(field, tmp_path):
    out = tmp_path / "pts.gpkg"
    res = sample(field, out, "-n", "12", "--min-distance", "20")
    assert res.exit_code == 0, res.output
    gdf = read_points(out)
    assert len(gdf) == 12 and not gdf["legacy"].any()
    assert sorted(gdf["order"]) == list(range(1, 13))
    from geotool.io.raster import read_grid, read_stack

    grid = read_grid(field["dem"])
    rows, cols = grid.rowcol(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    assert np.array_equal(rows, gdf["row"]) and np.array_equal(cols, gdf["col"])
    cx, cy = grid.xy(rows, cols)
    assert np.allclose(cx, gdf["x"]) and np.allclose(cy, gdf["y"])  # cell centres
    stack = read_stack([field["dem"], field["ndvi"]])
    assert stack.valid[rows, cols].all()  # never a nodata cell of any layer
    assert len(set(zip(rows, cols))) == 12
    assert (gdf["nearest_m"] >= 20).all()
    side = json.loads(Path(str(out) + ".json").read_text())
    assert side["command"] == "soil-sample" and side["config"]["n_points"] == 12
    assert any("dem.tif" in k for k in side["inputs"])
    assert np.allclose(gdf["lon"], 37.7, atol=0.1) and np.allclose(gdf["lat"], 51.9, atol=0.1)


def test_many_points_boundary_and_legacy(field, tmp_path):
    bnd = boundary_polygon(tmp_path)  # EPSG:4326, reprojected to the raster's UTM
    legacy = tmp_path / "old.csv"
    legacy.write_text("x,y\n416012.5,5751987.5\n416182.5,5751877.5\n")  # raster CRS, one outside the boundary
    out = tmp_path / "pts.geojson"
    res = sample(field, out, "-n", "60", "--boundary", str(bnd), "--existing", str(legacy), "--min-distance", "6")
    assert res.exit_code == 0, res.output
    gdf = read_points(out)
    assert len(gdf) == 62 and gdf["legacy"].sum() == 2
    new = gdf[~gdf["legacy"]]
    # boundary: left + 20 .. left + 100 m, top - 150 .. top - 20 m
    assert (new["x"] > TRANSFORM.c + 20).all() and (new["x"] < TRANSFORM.c + 100).all()
    assert (new["y"] < TRANSFORM.f - 20).all() and (new["y"] > TRANSFORM.f - 150).all()
    assert np.allclose(sorted(gdf[gdf["legacy"]]["x"]), [416012.5, 416182.5])
    xy = np.column_stack([gdf["x"], gdf["y"]])
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    assert d[2:].min() >= 6.0 * 0.999  # new points vs everything (UTM scale ~1)


@pytest.mark.parametrize("method", ["random", "clhs", "kmeans", "maxvol"])
def test_same_seed_same_file(field, tmp_path, method):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    cfg = tmp_path / "soil.yaml"
    cfg.write_text("clhs_iterations: 500\nmin_distance: 10\n")  # a user YAML; flags override it
    for out in (a, b):
        res = sample(field, out, "-n", "8", "--method", method, "--seed", "4", "--config", str(cfg))
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()


def _assert_clean_error(res, out: Path, pattern: str):
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], res.output
    assert not out.exists() and not Path(str(out) + ".json").exists()


def test_bad_inputs_exit_2_one_line_no_output(field, tmp_path):
    from conftest import make_raster

    out = tmp_path / "pts.gpkg"
    _assert_clean_error(runner.invoke(app, ["soil-sample", str(tmp_path / "missing.tif"), "-n", "3", "-o", str(out)]), out, "no such")
    notraster = tmp_path / "notes.tif"
    notraster.write_text("hello")
    _assert_clean_error(runner.invoke(app, ["soil-sample", str(notraster), "-n", "3", "-o", str(out)]), out, "not a readable raster")
    other = make_raster(tmp_path / "other.tif", np.ones((36, 44), np.float32), crs="EPSG:32636", transform=TRANSFORM)
    _assert_clean_error(sample(field, out, str(other), "-n", "3"), out, "EPSG:32636")
    far = boundary_polygon(tmp_path, "far.gpkg", shift_deg=5.0)
    _assert_clean_error(sample(field, out, "-n", "3", "--boundary", str(far)), out, "does not overlap")
    _assert_clean_error(sample(field, out, "-n", "400", "--min-distance", "40"), out, "could be placed")
    _assert_clean_error(sample(field, out, "-n", "3", "--method", "nope"), out, "method")
    _assert_clean_error(sample(field, tmp_path / "pts.txt", "-n", "3"), tmp_path / "pts.txt", "extension")


def test_constant_covariate_is_reported_and_dropped(field, tmp_path):
    from conftest import make_raster

    const = make_raster(tmp_path / "flat.tif", np.full((36, 44), 7.0, np.float32), crs=CRS, transform=TRANSFORM, nodata=NODATA)
    out = tmp_path / "pts.gpkg"
    res = sample(field, out, str(const), "-n", "5")
    assert res.exit_code == 0, res.output
    assert "warning: covariate flat dropped: constant" in res.output
    side = json.loads(Path(str(out) + ".json").read_text())
    assert "flat" in side["results"]["dropped_covariates"]


def test_data_samples_sample_and_evaluate_with_plots(data_samples, tmp_path):
    soil = data_samples / "soil"
    out, png = tmp_path / "kshen.gpkg", tmp_path / "kshen.png"
    res = runner.invoke(app, ["soil-sample", str(soil / "ndvi.tif"), "--dem", str(soil / "dem.tif"), "--resample", "bilinear",
                              "-n", "20", "--min-distance", "30", "-o", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert len(read_points(out)) == 20 and png.read_bytes()[:4] == b"\x89PNG"
    table, png2 = tmp_path / "eval.csv", tmp_path / "eval.png"
    res = runner.invoke(app, ["soil-evaluate", str(soil / "kshen_data.csv"), "--dem", str(soil / "dem.tif"), "--x-column", "LON",
                              "--y-column", "LAT", "--crs", "EPSG:32637", "--sizes", "10,20", "--repeats", "3",
                              "--methods", "maxvol,random,clhs", "--design", str(out), "-o", str(table), "--plot", str(png2)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    t = pd.read_csv(table)
    assert {"maxvol", "random", "clhs", "kshen"} <= set(t["method"])
    assert "Moisture_perc_10" in set(t["property"]) and "Point" not in set(t["property"])
    assert ((t["ks"] >= 0) & (t["ks"] <= 1)).all() and (t["wasserstein"] >= 0).all()
    assert png2.read_bytes()[:4] == b"\x89PNG"


def test_soil_commands_do_not_import_torch(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from geotool.cli.main import app; "
        "r = CliRunner().invoke(app, ['soil-sample', '--help']); assert r.exit_code == 0; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_shapefile_output_feeds_existing_and_evaluate_errors(field, tmp_path):
    first = tmp_path / "first.shp"
    assert sample(field, first, "-n", "4", "--min-distance", "25").exit_code == 0
    out = tmp_path / "second.gpkg"
    res = sample(field, out, "-n", "5", "--existing", str(first), "--min-distance", "25")
    assert res.exit_code == 0, res.output
    gdf = read_points(out)
    assert len(gdf) == 9 and gdf["legacy"].sum() == 4
    assert gdf["nearest_m"].min() >= 25 * 0.999
    table = tmp_path / "eval.csv"
    res = runner.invoke(app, ["soil-evaluate", str(tmp_path / "nope.csv"), "--crs", "EPSG:32637", "-o", str(table)])
    _assert_clean_error(res, table, "no such")
    measured = tmp_path / "m.csv"
    measured.write_text("x,y,clay\n416010,5751990,1\n416050,5751950,2\n416090,5751910,3\n")
    res = runner.invoke(app, ["soil-evaluate", str(measured), "--crs", "EPSG:32637", "--sizes", "9", "-o", str(table)])
    _assert_clean_error(res, table, "more than the 3 usable measured points")
