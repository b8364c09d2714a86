"""Streaming (strip by strip) components, object F1 and polygons equal their whole-raster versions."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin
from scipy import ndimage

from geotool.io.components import StripComponents, strip_windows
from geotool.io.raster import Grid, RasterSource, write_raster
from geotool.io.vector import vectorize, vectorize_source, write_vector
from geotool.segmentation.evaluate import EvaluateConfig, ObjectMatcher, object_f1, run_evaluate

GRID = Grid(CRS.from_epsg(32633), from_origin(500000.0, 5100000.0, 0.5, 0.5), 257, 300)
STRIP = 16
FOUR = ndimage.generate_binary_structure(2, 1)


def _draw_shapes(mask: np.ndarray) -> None:
    """Shapes that only connect across strip boundaries, in the clear band of columns 200..256."""
    mask[:, 200:] = False
    mask[5:44, 204:206] = mask[5:44, 214:216] = True  # U: arms in strips 0-1, joined by the base in strip 2
    mask[40:44, 204:216] = True
    mask[60:64, 204:216] = True  # inverted U: one bar, arms down through strips 3-5
    mask[60:95, 204:206] = mask[60:95, 214:216] = True
    for i, r in enumerate(range(100, 290, 6)):  # snake over 12 strips
        mask[r:r + 3, 220:250] = True
        mask[r:r + 6, 220 if i % 2 else 247:(220 if i % 2 else 247) + 3] = True
    mask[15:80, 230:256] = True  # ring: a hole spanning strips 1-4
    mask[20:75, 236:250] = False


def blobs(seed: int = 0, classes: int = 1, nodata: bool = False) -> np.ndarray:
    """Irregular touching blobs (uint8 classes 1..classes on 0), with shapes crossing strip boundaries."""
    rng = np.random.default_rng(seed)
    fg = ndimage.gaussian_filter(rng.random(GRID.shape), 2.5) > 0.5
    _draw_shapes(fg)
    cls = np.where(fg, 1, 0).astype(np.uint8)
    if classes > 1:
        kind = ndimage.gaussian_filter(rng.random(GRID.shape), 4)
        levels = np.quantile(kind, np.linspace(0, 1, classes + 1)[1:-1])
        cls[fg] = 1 + np.digitize(kind[fg], levels)
    if nodata:
        cls[100:140, 30:90] = 255
        cls[rng.random(GRID.shape) < 0.002] = 255
    return cls


def _stream_labels(fg: np.ndarray, classes: np.ndarray | None, rows: int) -> tuple[np.ndarray, StripComponents]:
    comps = StripComponents()
    strips = []
    for w in strip_windows(GRID, rows):
        sl = slice(w.row_off, w.row_off + w.height)
        strips.append(comps.add(fg[sl], None if classes is None else classes[sl]))
    final = comps.resolve()
    return np.concatenate([final[s.ids()] for s in strips]), comps


@pytest.mark.parametrize("rows", [1, 7, STRIP, 300])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_labels_equal_scipy_label(seed, rows):
    fg = blobs(seed).astype(bool)
    expected, n = ndimage.label(fg, FOUR)
    labels, comps = _stream_labels(fg, None, rows)
    assert n > 50 and comps.n == n
    assert np.array_equal(labels, expected)  # same partition and even scipy's raster-order numbering
    assert np.array_equal(comps.counts, np.bincount(expected.ravel(), minlength=n + 1) * (np.arange(n + 1) > 0))


def test_streaming_labels_split_touching_classes():
    cls = blobs(2, classes=3)
    expected, n = np.zeros(cls.shape, np.int64), 0
    for c in (1, 2, 3):  # whole-array reference: each class labelled on its own
        lab, k = ndimage.label(cls == c, FOUR)
        expected[lab > 0] = lab[lab > 0] + n
        n += k
    labels, comps = _stream_labels(cls > 0, cls, STRIP)
    assert comps.n == n > ndimage.label(cls > 0, FOUR)[1]  # classes split touching blobs
    pairs = np.unique(np.stack([labels[cls > 0], expected[cls > 0]]), axis=1)
    assert pairs.shape[1] == n  # a one-to-one map between the two partitions
    assert np.array_equal(comps.counts[pairs[0]], np.bincount(expected.ravel())[pairs[1]])
    assert np.array_equal(comps.classes[pairs[0]], [cls[expected == e][0] for e in pairs[1]])


def test_ushape_joined_only_below_merges_into_one_component():
    fg = np.zeros(GRID.shape, bool)
    _draw_shapes(fg)
    labels, comps = _stream_labels(fg, None, STRIP)
    assert comps.n == ndimage.label(fg, FOUR)[1] == 4
    assert labels[5, 204] == labels[5, 214] == labels[43, 210]  # both arms of the U
    assert labels[94, 204] == labels[94, 214]  # both arms of the inverted U
    assert labels[100, 220] == labels[288, 220]  # the snake, over 12 strips
    assert labels[15, 230] == labels[79, 255] and labels[40, 240] == 0  # the ring, around its hole


def _pred_ref(seed: int) -> tuple[np.ndarray, np.ndarray]:
    ref = blobs(seed).astype(bool)
    rng = np.random.default_rng(seed + 10)
    pred = ndimage.binary_dilation(ref, FOUR) if seed % 2 else ndimage.binary_erosion(ref, FOUR)
    pred = np.roll(pred, 1, axis=1) ^ (rng.random(ref.shape) < 0.01)
    return pred, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_streaming_object_f1_equals_whole_array(seed, threshold):
    pred, ref = _pred_ref(seed)
    matcher = ObjectMatcher()
    for w in strip_windows(GRID, STRIP):
        sl = slice(w.row_off, w.row_off + w.height)
        matcher.add(pred[sl], ref[sl])
    expected = object_f1(pred, ref, threshold)
    assert expected["matched"] > 20
    assert matcher.result(threshold) == expected


def test_evaluate_reads_strips_and_matches_whole_arrays(tmp_path):
    pred, ref = _pred_ref(3)
    pred_u8, ref_u8 = pred.astype(np.uint8), ref.astype(np.uint8)
    pred_u8[:10, :10] = 255  # prediction nodata
    ref_u8[-10:, -10:] = 255  # reference ignore_index
    write_raster(tmp_path / "pred.tif", pred_u8, GRID, nodata=255, tags={"classes": "background,building"})
    write_raster(tmp_path / "ref.tif", ref_u8, GRID)
    keep = (pred_u8 != 255) & (ref_u8 != 255)
    records = []
    for rows in (STRIP, 1000):
        cfg = EvaluateConfig(prediction=str(tmp_path / "pred.tif"), reference=str(tmp_path / "ref.tif"),
                             output=str(tmp_path / f"m{rows}.json"), strip_rows=rows)
        records.append(run_evaluate(cfg))
    expected = np.bincount(ref_u8[keep].astype(int) * 2 + pred_u8[keep], minlength=4).reshape(2, 2)
    assert records[0]["confusion_matrix"] == expected.tolist() == records[1]["confusion_matrix"]
    assert records[0]["objects"] == object_f1(pred & keep, ref & keep) == records[1]["objects"]
    assert json.loads((tmp_path / f"m{STRIP}.json").read_text())["objects"]["matched"] > 20


def test_evaluate_rasterizes_vector_reference_per_strip(tmp_path):
    pred, ref = _pred_ref(4)
    write_raster(tmp_path / "pred.tif", pred.astype(np.uint8), GRID, nodata=255)
    polys = vectorize(ref.astype(np.uint8), GRID)
    write_vector(polys, tmp_path / "ref.gpkg")
    cfg = EvaluateConfig(prediction=str(tmp_path / "pred.tif"), reference=str(tmp_path / "ref.gpkg"),
                         output=str(tmp_path / "m.json"), strip_rows=STRIP)
    record = run_evaluate(cfg)
    expected = np.bincount(ref.ravel().astype(int) * 2 + pred.ravel(), minlength=4).reshape(2, 2)
    assert record["confusion_matrix"] == expected.tolist()
    assert record["objects"] == object_f1(pred, ref)


def _areas_by_class(gdf) -> dict[int, list[float]]:
    return {c: sorted(gdf.loc[gdf["class_id"] == c, "area"]) for c in sorted(set(gdf["class_id"]))}


@pytest.mark.parametrize("rows", [1, STRIP, 1000])
def test_streaming_polygons_equal_whole_raster_vectorize(tmp_path, rows):
    cls = blobs(5, classes=3, nodata=True)
    write_raster(tmp_path / "cls.tif", cls, GRID, nodata=255)
    names = {1: "a", 2: "b", 3: "c"}
    expected = vectorize(cls, GRID, valid=cls != 255, class_names=names)
    with RasterSource(tmp_path / "cls.tif") as src:
        got = vectorize_source(src, nodata=255, class_names=names, strip_rows=rows)
    assert len(got) == len(expected) > 100
    assert got.crs == GRID.crs and got.geometry.geom_type.eq("Polygon").all() and got.is_valid.all()
    want, have = _areas_by_class(expected), _areas_by_class(got)
    assert list(have) == list(want) == [1, 2, 3]
    for c in want:
        assert sum(have[c]) == pytest.approx(sum(want[c]), rel=1e-9)
        assert np.allclose(have[c], want[c], rtol=1e-6, atol=0)
    assert dict(Counter(got["class_name"])) == dict(Counter(expected["class_name"]))
    assert _wkts(got) == _wkts(expected)  # even the same vertices in the same order


def _wkts(gdf) -> list[tuple[int, str]]:
    return sorted(zip(gdf["class_id"], gdf.geometry.to_wkt(rounding_precision=6)))


def test_streaming_polygons_filter_and_simplify_after_merging(tmp_path):
    cls = blobs(6, classes=2)
    write_raster(tmp_path / "cls.tif", cls, GRID)
    min_area = 40.0  # m^2: 160 pixels of 0.25 m^2, more than most pieces of one strip of 16 rows hold
    expected = vectorize(cls, GRID, min_area=min_area, simplify=0.5)
    with RasterSource(tmp_path / "cls.tif") as src:
        got = vectorize_source(src, min_area=min_area, simplify=0.5, strip_rows=STRIP)
        raw = vectorize_source(src, strip_rows=STRIP)
    assert len(raw) > len(got) == len(expected) > 10
    assert (got["area"] >= min_area).all()
    assert _wkts(got) == _wkts(expected)  # merged pieces simplify exactly like whole polygons
    assert got.geometry.count_coordinates().sum() < raw[raw["area"] >= min_area].geometry.count_coordinates().sum()
