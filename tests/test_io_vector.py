"""geotool.io.vector: reprojection onto the raster grid, overlap checks, writing by extension."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, box

from geotool.errors import CRSError, InputFileError, NoOverlapError, OutputError
from geotool.io.raster import Grid
from geotool.io.vector import rasterize, read_vector, vectorize, write_vector

GRID = Grid(rasterio.crs.CRS.from_epsg(32633), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0), 20, 10)


def _points_4326(tmp_path, rows_cols, name="pts.gpkg"):
    x, y = GRID.xy(np.array([r for r, _ in rows_cols]), np.array([c for _, c in rows_cols]))
    gdf = gpd.GeoDataFrame({"id": range(len(x))}, geometry=gpd.points_from_xy(x, y), crs=GRID.crs).to_crs(4326)
    path = tmp_path / name
    gdf.to_file(path)
    return path


def test_vector_in_another_crs_lands_on_the_right_cells(tmp_path):
    path = _points_4326(tmp_path, [(0, 0), (3, 7), (9, 19)])
    gdf = read_vector(path, target=GRID)
    assert gdf.crs == GRID.crs
    rows, cols = GRID.rowcol(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (3, 7), (9, 19)]


def test_vector_outside_the_raster_is_a_clear_error(tmp_path):
    far = gpd.GeoDataFrame(geometry=[Point(20.0, -30.0)], crs=4326)
    path = tmp_path / "far.geojson"
    far.to_file(path)
    with pytest.raises(NoOverlapError, match=r"far.geojson \(EPSG:4326\) does not overlap dem.tif \(EPSG:32633\)"):
        read_vector(path, target=GRID, raster_name="dem.tif")


def test_vector_without_crs_is_refused(tmp_path):
    path = tmp_path / "nocrs.geojson"
    path.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
                    '"geometry":{"type":"Point","coordinates":[500050,5099950]}}]}')
    # GeoJSON without a crs member is WGS84 by definition; a shapefile without .prj has no CRS
    gdf = gpd.GeoDataFrame(geometry=[Point(500050, 5099950)])
    shp = tmp_path / "nocrs.shp"
    gdf.to_file(shp)
    with pytest.raises(CRSError, match="nocrs.shp has no CRS"):
        read_vector(shp, target=GRID)


def test_non_vector_and_missing_files(tmp_path):
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputFileError, match="bad.gpkg is not a readable vector file"):
        read_vector(bad)
    with pytest.raises(InputFileError, match="missing.gpkg: no such vector file"):
        read_vector(tmp_path / "missing.gpkg")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".csv"])
def test_write_vector_by_extension_carries_crs(tmp_path, suffix):
    gdf = gpd.GeoDataFrame({"value": [1.5, 2.5]}, geometry=[Point(500005, 5099995), Point(500105, 5099905)],
                           crs=GRID.crs)
    path = write_vector(gdf, tmp_path / f"points{suffix}")
    if suffix == ".csv":
        frame = pd.read_csv(path)
        assert frame["crs"].unique().tolist() == ["EPSG:32633"]
        assert frame[["x", "y"]].to_numpy().tolist() == [[500005, 5099995], [500105, 5099905]]
    else:
        back = gpd.read_file(path)
        assert back.crs.to_epsg() == 32633
        assert back["value"].tolist() == [1.5, 2.5]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_vector_rejects_unknown_extension(tmp_path):
    gdf = gpd.GeoDataFrame(geometry=[Point(0, 0)], crs=4326)
    with pytest.raises(OutputError, match="unsupported vector extension .txt"):
        write_vector(gdf, tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []


def test_points_csv_needs_columns_and_crs(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("\ufeffE,N,v\n500005,5099995,1\n")
    gdf = read_vector(path, target=GRID, x_column="E", y_column="N", csv_crs="EPSG:32633")
    assert gdf.geometry.x.tolist() == [500005]
    with pytest.raises(InputFileError, match="has no column LON"):
        read_vector(path, x_column="LON", y_column="N", csv_crs="EPSG:32633")
    with pytest.raises(CRSError, match="without a CRS"):
        read_vector(path, x_column="E", y_column="N")


def test_rasterize_window_and_vectorize_round_trip():
    square = box(500020, 5099930, 500060, 5099970)  # cols 2..5, rows 3..6
    gdf = gpd.GeoDataFrame({"cls": [3]}, geometry=[square], crs=GRID.crs)
    full = rasterize(gdf, GRID, values=gdf["cls"])
    assert full.sum() == 3 * 16 and full[3:7, 2:6].min() == 3
    window = rasterio.windows.Window(4, 5, 4, 4)
    part = rasterize(gdf, GRID, window=window, values=gdf["cls"])
    assert np.array_equal(part, full[5:9, 4:8])
    polys = vectorize(full, GRID, class_names={3: "building"})
    assert len(polys) == 1 and polys["class_name"].tolist() == ["building"]
    assert polys.geometry.iloc[0].equals(square) and polys["area"].iloc[0] == pytest.approx(1600)
    assert len(vectorize(full, GRID, min_area=2000)) == 0


def test_invalid_polygons_are_repaired_and_counted(tmp_path, caplog):
    import logging

    import geopandas as gpd
    from shapely.geometry import Polygon, box

    from geotool.io.vector import read_vector, write_vector

    bow = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting
    path = write_vector(gpd.GeoDataFrame({"k": [1, 2]}, geometry=[bow, box(5, 5, 6, 6)], crs="EPSG:32633"), tmp_path / "l.gpkg")
    with caplog.at_level(logging.WARNING, logger="geotool"):
        gdf = read_vector(path)
    assert gdf.geometry.is_valid.all() and len(gdf) == 2 and gdf.geometry.area.round(6).tolist() == [2.0, 1.0]
    assert "1 invalid polygon(s)" in caplog.text and "l.gpkg" in caplog.text
