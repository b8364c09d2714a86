"""Polygons streamed region by region (emitted when complete) and vector outputs written chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from rasterio.crs import CRS
from rasterio.transform import from_origin
from scipy import ndimage
from shapely.geometry import Point

from geotool.errors import OutputError
from geotool.io.components import StripComponents
from geotool.io.raster import Grid, RasterSource, write_raster
from geotool.io.vector import (
    iter_polygons_source,
    read_vector,
    vector_writer,
    vectorize,
    vectorize_source,
    write_vector,
)
from geotool.segmentation.predict import CLASS_NODATA, PredictConfig, _scene_polygons, merge_polygons

GRID = Grid(CRS.from_epsg(32633), from_origin(500000.0, 5100000.0, 0.5, 0.5), 60, 70)
ROWS = 7  # strip height: regions below span several strips


def scene(seed: int = 0, nodata: bool = True) -> np.ndarray:
    """uint8 classes 1..3 on 0 with nodata 255: random blobs plus a U whose arms join only in the third
    strip, a ring whose hole spans strips, a snake over every strip and two classes touching."""
    rng = np.random.default_rng(seed)
    cls = np.zeros(GRID.shape, np.uint8)
    fg = ndimage.gaussian_filter(rng.random(GRID.shape), 1.5) > 0.53
    kind = ndimage.gaussian_filter(rng.random(GRID.shape), 3)
    cls[fg] = 1 + np.digitize(kind[fg], np.quantile(kind, [1 / 3, 2 / 3]))
    cls[:, 34:] = 0
    cls[2:20, 36:38] = cls[2:20, 42:44] = 1  # U: arms in strips 0-1, base in strip 2 (not its last row)
    cls[17:20, 36:44] = 1
    cls[24:41, 36:50] = 2  # ring; its hole spans strips 3-5
    cls[28:37, 40:46] = 0
    for i, r in enumerate(range(0, 70, 4)):  # snake of class 3 over all 10 strips
        cls[r:r + 2, 52:59] = 3
        cls[r:r + 4, 52 if i % 2 else 57:(52 if i % 2 else 57) + 2] = 3
    cls[44:60, 36:42], cls[44:60, 42:48] = 1, 2  # two classes touching: two regions
    if nodata:
        cls[rng.random(GRID.shape) < 0.01] = CLASS_NODATA
    return cls


def _records(gdf) -> tuple[list, list]:
    names = gdf["class_name"] if "class_name" in gdf else gdf["class_id"]
    wkts = sorted(zip(gdf["class_id"], names, gdf.geometry.to_wkt(rounding_precision=6)))
    areas = sorted(zip(gdf["class_id"], np.round(gdf["area"], 6)))
    return wkts, areas


class CountingSource:
    """A RasterSource stand-in that counts the strips read."""

    def __init__(self, src):
        self.src, self.grid, self.reads = src, src.grid, 0

    def read(self, window):
        self.reads += 1
        return self.src.read(window)


NAMES = {1: "a", 2: "b", 3: "c"}


@pytest.mark.parametrize("simplify,min_area", [(0.0, 0.0), (0.5, 2.0)])
def test_streamed_chunks_equal_whole_raster_vectorize(tmp_path, simplify, min_area):
    cls = scene()
    write_raster(tmp_path / "cls.tif", cls, GRID, nodata=CLASS_NODATA)
    expected = vectorize(cls, GRID, valid=cls != CLASS_NODATA, class_names=NAMES, simplify=simplify, min_area=min_area)
    with RasterSource(tmp_path / "cls.tif") as src:
        chunks = list(iter_polygons_source(src, nodata=CLASS_NODATA, class_names=NAMES, simplify=simplify,
                                           min_area=min_area, strip_rows=ROWS))
        whole = vectorize_source(src, nodata=CLASS_NODATA, class_names=NAMES, simplify=simplify, min_area=min_area,
                                 strip_rows=ROWS)
    got = pd.concat(chunks, ignore_index=True)
    assert len(chunks) > 5 and all(len(c) for c in chunks[:-1])
    assert len(got) == len(expected) > 20 and got.crs == GRID.crs and got.is_valid.all()
    assert _records(got) == _records(expected)  # same vertices, classes and areas
    assert_geodataframe_equal(whole, got)


def test_ushape_ring_and_snake_are_emitted_whole_once_complete(tmp_path):
    cls = np.zeros(GRID.shape, np.uint8)
    cls[:, 34:] = scene(nodata=False)[:, 34:]  # only the drawn shapes
    write_raster(tmp_path / "cls.tif", cls, GRID)
    with RasterSource(tmp_path / "cls.tif") as src:
        counting = CountingSource(src)
        arrivals = [(counting.reads, chunk) for chunk in iter_polygons_source(counting, strip_rows=ROWS)]
    got = pd.concat([c for _, c in arrivals], ignore_index=True)
    assert _records(got)[0] == _records(vectorize(cls, GRID))[0]
    arms = [Point(*GRID.transform * (36.5, 3.5)), Point(*GRID.transform * (43.5, 3.5))]
    u = [(reads, c[c.contains(arms[0])]) for reads, c in arrivals if c.contains(arms[0]).any()]
    assert len(u) == 1 and u[0][0] == 3  # after strip 2 (its base), not before
    assert len(u[0][1]) == 1 and u[0][1].contains(arms[1]).all()  # both arms: one polygon
    wall, hole = Point(*GRID.transform * (36.5, 24.5)), Point(*GRID.transform * (43, 32))
    ring = [(reads, c[c.contains(wall)]) for reads, c in arrivals if c.contains(wall).any()]
    assert len(ring) == 1 and ring[0][0] == 6  # rows 24-40: complete after strip 5 (rows 35-41)
    poly = ring[0][1].geometry.iloc[0]
    assert len(poly.interiors) == 1 and not poly.contains(hole) and poly.envelope.contains(hole)
    snake = arrivals[-1][1]
    assert counting.reads == 10 and list(snake["class_id"]) == [3]  # open to the last row: the last chunk


def test_regions_are_emitted_before_the_last_strip_is_read(tmp_path):
    cls = np.zeros(GRID.shape, np.uint8)
    for r in range(1, 35, ROWS):  # top half: small blobs, each inside one strip
        for c in range(2, 58, 6):
            cls[r:r + 3, c:c + 3] = 1 + (c // 6) % 3
    cls[40:, 10:50] = 2  # bottom half: one region open to the last row
    write_raster(tmp_path / "cls.tif", cls, GRID)
    with RasterSource(tmp_path / "cls.tif") as src:
        counting = CountingSource(src)
        reads = []
        for chunk in iter_polygons_source(counting, strip_rows=ROWS):
            reads.append((counting.reads, len(chunk)))
    assert reads[:5] == [(i, 10) for i in range(1, 6)]  # every strip's blobs right after that strip
    assert reads[-1] == (10, 1)  # the open region at the end


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".geojson", ".shp"])
def test_appended_chunks_equal_one_shot_write_vector(tmp_path, suffix):
    cls = scene(1)
    write_raster(tmp_path / "cls.tif", cls, GRID, nodata=CLASS_NODATA)
    with RasterSource(tmp_path / "cls.tif") as src:
        chunks = list(iter_polygons_source(src, nodata=CLASS_NODATA, class_names=NAMES, strip_rows=ROWS))
    assert len(chunks) > 5
    one = write_vector(pd.concat(chunks, ignore_index=True), tmp_path / f"one{suffix}")
    with vector_writer(tmp_path / f"many{suffix}") as out:
        for chunk in chunks:
            out.write(chunk)
    assert out.rows == sum(map(len, chunks))
    many = tmp_path / f"many{suffix}"
    if suffix == ".csv":
        assert many.read_text() == one.read_text()
    else:
        assert_geodataframe_equal(read_vector(many), read_vector(one))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp left


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".shp"])
def test_empty_stream_writes_columns_and_crs(tmp_path, suffix):
    write_raster(tmp_path / "cls.tif", np.zeros(GRID.shape, np.uint8), GRID)
    with RasterSource(tmp_path / "cls.tif") as src:
        chunks = list(iter_polygons_source(src, class_names=NAMES, strip_rows=ROWS))
        whole = vectorize_source(src, class_names=NAMES, strip_rows=ROWS)
    assert len(chunks) == 1 and len(chunks[0]) == 0 and list(whole.columns) == ["class_id", "class_name", "geometry", "area"]
    with vector_writer(tmp_path / f"e{suffix}") as out:
        for chunk in chunks:
            out.write(chunk)
    one = write_vector(whole, tmp_path / f"one{suffix}")
    if suffix == ".csv":
        assert (tmp_path / "e.csv").read_text() == one.read_text() == "class_id,class_name,area,wkt,crs\n"
    else:
        got = read_vector(tmp_path / f"e{suffix}")
        assert len(got) == 0 and got.crs == GRID.crs
        assert list(got.columns) == list(read_vector(one).columns)


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".shp"])
def test_error_mid_stream_leaves_no_output(tmp_path, suffix):
    cls = scene(2)
    write_raster(tmp_path / "cls.tif", cls, GRID, nodata=CLASS_NODATA)
    path = tmp_path / "out" / f"p{suffix}"

    def failing():
        with RasterSource(tmp_path / "cls.tif") as src:
            for i, chunk in enumerate(iter_polygons_source(src, nodata=CLASS_NODATA, strip_rows=ROWS)):
                if i == 3:
                    raise RuntimeError("disk on fire")
                yield chunk

    with pytest.raises(RuntimeError, match="disk on fire"):
        with vector_writer(path) as out:
            for chunk in failing():
                out.write(chunk)
    assert out.rows > 0 and list(path.parent.iterdir()) == []
    write_vector(vectorize(cls, GRID, valid=cls != CLASS_NODATA), path)  # an existing output survives a failure
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk on fire"):
        with vector_writer(path) as out:
            for chunk in failing():
                out.write(chunk)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in path.parent.iterdir()
                                                                    if not p.name.startswith("."))


def test_vector_writer_refuses_mixed_crs_and_unknown_extension(tmp_path):
    with pytest.raises(OutputError, match="unsupported vector extension"):
        with vector_writer(tmp_path / "p.txt"):
            pass
    gdf = vectorize(scene()[:, :30], GRID)
    with pytest.raises(ValueError, match="after chunks in"):
        with vector_writer(tmp_path / "p.gpkg") as out:
            out.write(gdf)
            out.write(gdf.to_crs(4326))
    assert list(tmp_path.iterdir()) == []


def test_open_roots_tell_which_components_can_still_grow():
    comps = StripComponents()
    a = comps.add(np.array([[1, 0, 1], [1, 0, 1]], bool))  # ids 1 (left), 2 (right)
    assert comps.open_roots().tolist() == [1, 2]
    b = comps.add(np.array([[1, 1, 1], [0, 0, 0]], bool))  # id 3 joins 1 and 2
    assert a.n == 2 and b.offset == 2
    assert comps.roots(np.array([0, 1, 2, 3])).tolist() == [0, 1, 1, 1] and comps.open_roots().size == 0
    comps.add(np.array([[0, 0, 1]], bool))
    assert comps.open_roots().tolist() == [4] and comps.classes_of(np.array([4])).tolist() == [0]


def _predict_inputs(tmp_path, crs_b):
    results = []
    for name, crs, seed in (("a", GRID.crs, 3), ("b", crs_b, 4)):
        grid = Grid(crs, GRID.transform, GRID.width, GRID.height)
        write_raster(tmp_path / f"{name}_classes.tif", scene(seed) % 3, grid, nodata=CLASS_NODATA)
        results.append({"raster": str(tmp_path / f"{name}.tif"), "classes": str(tmp_path / f"{name}_classes.tif")})
    cfg = PredictConfig(model="m.ckpt", rasters=["x"], output=str(tmp_path), polygons=str(tmp_path / "p.gpkg"),
                        preview=False)
    payload = {"class_names": ["background", "x", "y"]}
    for res in results:  # each scene's polygons, as a batch writes them
        res["file"] = tmp_path / f"{Path(res['raster']).stem}_polygons.gpkg"
        res["polygons"] = _scene_polygons(res, payload, cfg, res["file"])
    return results, payload, cfg


def test_predict_polygons_stream_per_scene_and_merge_into_one_file_per_crs(tmp_path):
    results, payload, cfg = _predict_inputs(tmp_path, GRID.crs)
    assert merge_polygons([r["file"] for r in results], tmp_path / "p.gpkg") == [tmp_path / "p.gpkg"]
    got = read_vector(tmp_path / "p.gpkg")
    assert got.crs == GRID.crs and len(got) == sum(r["polygons"] for r in results) > 20
    for name, res in zip("ab", results):
        with RasterSource(res["classes"]) as src:
            expected = vectorize_source(src, nodata=CLASS_NODATA, class_names=dict(enumerate(payload["class_names"])))
        for frame in (got[got["source"] == f"{name}.tif"], read_vector(res["file"])):
            assert len(frame) == res["polygons"] == len(expected)
            assert sorted(frame.geometry.to_wkt(rounding_precision=4)) == sorted(expected.geometry.to_wkt(rounding_precision=4))
    results, payload, cfg = _predict_inputs(tmp_path / "two", CRS.from_epsg(32634))
    merge_polygons([r["file"] for r in results], tmp_path / "two" / "p.gpkg")
    assert sorted(p.name for p in (tmp_path / "two").glob("p*.gpkg")) == ["p_EPSG32633.gpkg", "p_EPSG32634.gpkg"]
    assert read_vector(tmp_path / "two" / "p_EPSG32634.gpkg").crs == CRS.from_epsg(32634)
    merge_polygons([results[0]["file"]], tmp_path / "two" / "p.gpkg", shard=(2, 3))  # shards never share a file
    assert (tmp_path / "two" / "p-2-of-3.gpkg").exists()


def test_predict_polygons_merge_failing_on_a_later_scene_writes_nothing(tmp_path, monkeypatch):
    import geotool.io.vector as vector

    results, payload, cfg = _predict_inputs(tmp_path, GRID.crs)
    real, calls = vector.iter_vector_chunks, []

    def second_fails(path, *args, **kwargs):
        calls.append(path)
        for chunk in real(path, *args, **kwargs):
            if len(calls) == 2:  # after the first scene's polygons were appended
                raise RuntimeError("killed")
            yield chunk

    monkeypatch.setattr(vector, "iter_vector_chunks", second_fails)
    with pytest.raises(RuntimeError, match="killed"):
        merge_polygons([r["file"] for r in results], tmp_path / "p.gpkg")
    assert len(calls) == 2 and results[0]["polygons"] > 0
    assert not (tmp_path / "p.gpkg").exists() and not list(tmp_path.glob(".p*"))
