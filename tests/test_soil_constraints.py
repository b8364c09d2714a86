"""soil-sample's field constraints, each checked exactly: access buffer, exclusions, backups, strata, cost."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import LineString, box
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.soil.constraints import allocate

runner = CliRunner()
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0)  # UTM 33N, 10 m; the grid is 40 rows x 50 cols
ROAD = LineString([(500000, 5099805), (500500, 5099795)])  # west-east across the field, EPSG:32633
EXCLUDED = box(500100, 5099700, 500260, 5099900)


@pytest.fixture
def field(raster_factory, tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:50]
    dem = (100 + 0.3 * yy + 0.1 * xx + rng.normal(0, 0.2, (40, 50))).astype(np.float32)
    ndvi = (0.5 + 0.3 * np.sin(xx / 7) + rng.normal(0, 0.02, (40, 50))).astype(np.float32)
    clay = (20 + 5 * np.cos(yy / 5) + rng.normal(0, 0.5, (40, 50))).astype(np.float32)
    files = {name: raster_factory(f"{name}.tif", arr, nodata=-9999) for name, arr in
             (("dem", dem), ("ndvi", ndvi), ("clay", clay))}
    roads = tmp_path / "roads.gpkg"  # written in WGS84: soil-sample reprojects it and buffers in metres
    gpd.GeoDataFrame(geometry=[ROAD], crs="EPSG:32633").to_crs("EPSG:4326").to_file(roads)
    exclude = tmp_path / "exclude.geojson"
    gpd.GeoDataFrame(geometry=[EXCLUDED], crs="EPSG:32633").to_file(exclude)
    files.update(roads=roads, exclude=exclude)
    return files


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _assert_clean_failure(result, tmp_path, *needles):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not list(tmp_path.glob("out*")), "a failed run left output behind"


@pytest.mark.parametrize("flags", [["--method", "maxvol"], ["--method", "random"], ["--match-marginals", "3"]],
                         ids=["maxvol", "random", "matched"])
def test_access_exclusion_and_backups_honoured_exactly(field, tmp_path, flags):
    out = tmp_path / "pts.gpkg"
    result = _run("soil-sample", field["ndvi"], field["clay"], field["dem"], "-n", 8, *flags,
                  "--access", field["roads"], "--access-buffer", 55, "--exclude", field["exclude"],
                  "--min-distance", 30, "--backups", 2, "--output", out)
    assert result.exit_code == 0, result.output
    pts = gpd.read_file(out)
    backups = gpd.read_file(tmp_path / "pts_backups.gpkg")
    assert len(pts) == 8 and len(backups) == 16 and backups.crs == pts.crs and pts.crs.to_epsg() == 32633
    for frame in (pts, backups):
        assert (frame.geometry.distance(ROAD) <= 55 + 1e-6).all()  # within reach of the road
        assert not frame.geometry.within(EXCLUDED).any() and not frame.geometry.intersects(EXCLUDED).any()
        col_f, row_f = (~T) * (frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())  # points on their cells
        assert np.array_equal(np.floor(row_f).astype(int), frame["row"]) and np.array_equal(np.floor(col_f).astype(int), frame["col"])
    # each backup: a distinct cell, not a design cell, at least 30 m from every design point except the one it replaces
    design_cells = set(zip(pts["row"], pts["col"]))
    backup_cells = list(zip(backups["row"], backups["col"]))
    assert len(set(backup_cells)) == 16 and not design_cells & set(backup_cells)
    assert sorted(backups.groupby("replaces")["rank"].apply(list).tolist()) == [[1, 2]] * 8
    xy = np.column_stack([pts.geometry.x, pts.geometry.y])
    for b in backups.itertuples():
        others = np.delete(xy, int(b.replaces) - 1, axis=0)
        assert np.hypot(*(others - [b.geometry.x, b.geometry.y]).T).min() >= 30 - 1e-6
    # without the constraints the design does use the excluded block or the far rows: the test can fail
    free = tmp_path / "free.gpkg"
    assert _run("soil-sample", field["ndvi"], field["clay"], field["dem"], "-n", 8, *flags,
                "--output", free).exit_code == 0
    unconstrained = gpd.read_file(free)
    assert (unconstrained.geometry.distance(ROAD) > 55).any() or unconstrained.geometry.within(EXCLUDED).any()


def test_same_seed_same_files_with_constraints(field, tmp_path):
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "pts.geojson"
        assert _run("soil-sample", field["ndvi"], field["clay"], "-n", 6, "--access", field["roads"],
                    "--access-buffer", 60, "--backups", 1, "--seed", 4, "--output", out).exit_code == 0
        outs.append((out.read_bytes(), (tmp_path / run / "pts_backups.geojson").read_bytes()))
    assert outs[0] == outs[1]


def test_strata_raster_and_polygons_get_their_allocation(field, raster_factory, tmp_path):
    strata = np.ones((40, 50), np.int16)
    strata[:, 20:] = 7
    strata[30:, :] = 3
    strata[:2, :2] = -1  # nodata: never sampled
    path = raster_factory("strata.tif", strata, nodata=-1)
    out = tmp_path / "pts.gpkg"
    assert _run("soil-sample", field["ndvi"], field["clay"], "-n", 10, "--strata", path, "--output", out).exit_code == 0
    pts = gpd.read_file(out)
    cells = {1: (30 * 20 - 4), 7: 30 * 30, 3: 10 * 50}  # allowed cells per class (minus the nodata corner)
    expected = allocate({1: cells[1], 2: cells[3], 3: cells[7]}, 10)  # labels are the classes in sorted order
    got = np.bincount(strata[pts["row"], pts["col"]].clip(0), minlength=8)
    assert [got[1], got[3], got[7]] == [expected[1], expected[2], expected[3]] and got.sum() == 10
    # polygons with a count column: exactly those counts, in the right polygons
    polys = gpd.GeoDataFrame({"zone": ["w", "e"], "n_pts": [2, 5]},
                             geometry=[box(500000, 5099600, 500200, 5100000), box(500200, 5099600, 500500, 5100000)],
                             crs="EPSG:32633")
    ppath = tmp_path / "zones.gpkg"
    polys.to_file(ppath)
    out2 = tmp_path / "pts2.gpkg"
    result = _run("soil-sample", field["ndvi"], field["clay"], "-n", 7, "--strata", ppath, "--strata-column", "zone",
                  "--allocation", "n_pts", "--backups", 1, "--output", out2)
    assert result.exit_code == 0, result.output
    pts2 = gpd.read_file(out2)
    west = pts2.geometry.x < 500200
    assert west.sum() == 2 and (~west).sum() == 5
    backups = gpd.read_file(tmp_path / "pts2_backups.gpkg")
    replaced_west = west.to_numpy()[backups["replaces"].to_numpy() - 1]
    assert np.array_equal(backups.geometry.x.to_numpy() < 500200, replaced_west)  # backups stay in the stratum


def test_allocation_rules():
    assert allocate({1: 100, 2: 300}, 8) == {1: 2, 2: 6}
    assert allocate({1: 5, 2: 995}, 4) == {1: 1, 2: 3}  # every stratum visited
    assert allocate({1: 10, 2: 10, 3: 10}, 7, "equal") == {1: 3, 2: 2, 3: 2}


def test_cost_budget_is_never_exceeded_and_weight_moves_points_to_cheap_cells(field, raster_factory, tmp_path):
    cost = np.tile(np.arange(1, 51, dtype=np.float32), (40, 1))  # effort grows eastwards, 1..50 per cell
    cpath = raster_factory("cost.tif", cost)
    free = tmp_path / "free.gpkg"
    assert _run("soil-sample", field["ndvi"], field["clay"], "-n", 10, "--output", free).exit_code == 0
    free_cost = cost[0, gpd.read_file(free)["col"]].sum()
    budget = 0.4 * free_cost
    for features in ("kernel", "linear", "matched"):
        chosen = ["--match-marginals", "2"] if features == "matched" else ["--features", features]
        out = tmp_path / f"b_{features}.gpkg"
        result = _run("soil-sample", field["ndvi"], field["clay"], "-n", 10, *chosen, "--cost", cpath,
                      "--budget", budget, "--backups", 1, "--output", out)
        assert result.exit_code == 0, result.output
        pts = gpd.read_file(out)
        assert len(pts) == 10 and pts["cost"].sum() <= budget + 1e-6
        assert np.allclose(pts["cost"], cost[0, pts["col"]])
        backups = gpd.read_file(tmp_path / f"b_{features}_backups.gpkg")
        for b in backups.itertuples():  # swapping in any backup keeps the design within budget
            assert pts["cost"].sum() - pts["cost"].iloc[b.replaces - 1] + b.cost <= budget + 1e-6
    weighted = tmp_path / "w.gpkg"
    assert _run("soil-sample", field["ndvi"], field["clay"], "-n", 10, "--cost", cpath, "--cost-weight", 2,
                "--output", weighted).exit_code == 0
    assert gpd.read_file(weighted)["cost"].sum() < 0.8 * free_cost
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 10, "--cost", cpath, "--budget", 5,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "budget")


def test_constraint_errors_are_one_clean_line(field, raster_factory, tmp_path):
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--access", field["roads"],
                               "--output", tmp_path / "out.gpkg"), tmp_path, "--access-buffer")
    off_grid = raster_factory("cost_off.tif", np.ones((40, 50), np.float32),
                              transform=Affine(10.0, 0.0, 500005.0, 0.0, -10.0, 5100000.0))
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--cost", off_grid, "--budget", 100,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "cost_off.tif", "grid")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--strata", field["exclude"], "--strata-column",
                               "nope", "--output", tmp_path / "out.gpkg"), tmp_path, "exclude.geojson", "nope")
    far = tmp_path / "far_roads.gpkg"
    gpd.GeoDataFrame(geometry=[LineString([(500000, 5099000), (500500, 5099000)])], crs="EPSG:32633").to_file(far)
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--access", far, "--access-buffer", 5,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "far_roads.gpkg")
    _assert_clean_failure(_run("soil-sample", field["ndvi"], "-n", 5, "--backups", 3000,
                               "--output", tmp_path / "out.gpkg"), tmp_path, "backup")
