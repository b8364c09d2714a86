"""The pipelined engine: the same bits as the serial engine and as a whole-scene reference, one read per
input row, failures in any stage raised cleanly with nothing left on disk, thumbnails equal to the output."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from geotool.io import tiling
from geotool.io.raster import RasterSource, RasterWriter, open_writers
from geotool.io.tiling import TilingSpec, plan_windows, run_tiled


def _model(batch, valid):
    """Spatial context (so window borders matter) and three channels of different scales."""
    s = np.stack([ndimage.uniform_filter(b, size=(1, 5, 5), mode="constant") for b in batch])
    return np.concatenate([s[:, :1] / 1000, s[:, 1:2] / 700, (s[:, 2:3] * 0.3) % 1.0], axis=1)


def _finalize(blended, raw, valid):
    cls = blended.argmax(0).astype(np.uint8)
    cls[~valid] = 255
    return {"classes": cls, "probs": np.where(valid[None], blended, np.float32(-1)),
            "mixed": np.where(valid[None], raw * 0.5 + blended[:1], np.float32(-1))}


def _scene(raster_factory, shape=(3, 301, 517), seed=3):
    data = np.random.default_rng(seed).integers(0, 2000, shape).astype(np.int16)
    data[:, 100:130, 200:260] = -1  # a nodata hole
    return raster_factory("scene.tif", data, nodata=-1), data


def _run(path, out_dir, spec, depth, predict=_model, finalize=_finalize, **kwargs):
    out_dir.mkdir(exist_ok=True)
    with RasterSource(path) as src:
        writers = {"classes": RasterWriter(out_dir / "classes.tif", src.grid, 1, "uint8", 255),
                   "probs": RasterWriter(out_dir / "probs.tif", src.grid, 3, "float32", -1),
                   "mixed": RasterWriter(out_dir / "mixed.tif", src.grid, 3, "float32", -1)}
        with open_writers(writers) as opened:
            stats = run_tiled(src, predict, 3, finalize, opened, spec, pipeline_depth=depth, **kwargs)
    arrays = {}
    for name in writers:
        with rasterio.open(out_dir / f"{name}.tif") as ds:
            arrays[name] = ds.read()
    return arrays, stats


def _reference(path, spec):
    """The engine's arithmetic on the whole scene at once: the same float32 sums in the same window order,
    divided by the same separable weight sums."""
    with RasterSource(path) as src:
        grid = src.grid
        weights = tiling.blend_weights(spec)
        acc = np.zeros((3, grid.height, grid.width), np.float32)
        for w in plan_windows(grid, spec):
            data, valid = src.read(w)
            batch = np.where(valid[None], data.astype(np.float32), np.float32(0))[None]
            pred = np.asarray(tiling._predict_with_tta(_model, batch, valid[None], spec.tta), np.float32)[0]
            r, c = int(w.row_off), int(w.col_off)
            r0, c0 = max(r, 0), max(c, 0)
            r1, c1 = min(r + spec.window, grid.height), min(c + spec.window, grid.width)
            acc[:, r0:r1, c0:c1] += pred[:, r0 - r : r1 - r, c0 - c : c1 - c] * weights[r0 - r : r1 - r, c0 - c : c1 - c]
        ramp = tiling._ramp(spec)
        rows = tiling._coverage(tiling.window_starts(grid.height, spec.window, spec.stride, spec.offset), ramp, grid.height)
        cols = tiling._coverage(tiling.window_starts(grid.width, spec.window, spec.stride, spec.offset), ramp, grid.width)
        raw, valid = src.read(dtype=np.float32)
        raw[:, ~valid] = 0
    return _finalize(acc / np.outer(rows, cols), raw, valid)


SPECS = [
    TilingSpec(window=128, overlap=32, batch_size=3),
    TilingSpec(window=96, overlap=24, batch_size=5, offset=30, tta=True),
    TilingSpec(window=400, overlap=100, batch_size=2),  # wider than the scene: one window column, padded
    TilingSpec(window=64, overlap=0, batch_size=7),
]


@pytest.mark.parametrize("spec", SPECS)
def test_pipelined_serial_and_reference_are_the_same_bits(raster_factory, tmp_path, spec):
    path, _ = _scene(raster_factory)
    piped, _ = _run(path, tmp_path / "piped", spec, depth=2)
    serial, _ = _run(path, tmp_path / "serial", spec, depth=0)
    reference = _reference(path, spec)
    for name in piped:
        ref = np.asarray(reference[name])
        ref = ref[None] if ref.ndim == 2 else ref
        assert piped[name].tobytes() == serial[name].tobytes(), name
        assert piped[name].dtype == ref.dtype and piped[name].tobytes() == ref.tobytes(), name


def test_scene_smaller_than_a_window_and_wide_rows_in_column_chunks(raster_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(tiling, "EMIT_COLUMNS", 256)  # three column chunks per block, the last partial
    path, _ = _scene(raster_factory, shape=(3, 40, 700))
    spec = TilingSpec(window=64, overlap=16, batch_size=4)
    piped, _ = _run(path, tmp_path / "piped", spec, depth=3)
    ref = _reference(path, spec)
    assert piped["probs"].tobytes() == ref["probs"].tobytes()
    assert piped["classes"][0].tobytes() == ref["classes"].tobytes()


def test_each_input_row_is_read_once_with_all_bands_together(raster_factory, tmp_path, monkeypatch):
    path, _ = _scene(raster_factory, shape=(3, 700, 300))
    reads = []
    real = rasterio.io.DatasetReader.read

    def counting(self, indexes=None, *args, **kwargs):
        if self.name == str(path):
            window = kwargs["window"]
            reads.append((indexes, int(window.row_off), int(window.height)))
        return real(self, indexes, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting)
    _run(path, tmp_path / "out", TilingSpec(window=128, overlap=32, batch_size=4), depth=2)
    assert reads
    rows = np.zeros(700, int)
    for indexes, r0, h in reads:
        assert list(indexes) == [1, 2, 3]  # one read for the three bands
        rows[r0 : r0 + h] += 1
    assert (rows == 1).all()


@pytest.mark.parametrize("where", ["reader", "model", "finalize", "writer"])
def test_a_failure_in_any_stage_is_raised_and_leaves_no_file(raster_factory, tmp_path, monkeypatch, where):
    path, _ = _scene(raster_factory, shape=(3, 600, 300))
    calls = {"n": 0}

    def boom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError(f"{where} broke")

    predict, finalize = _model, _finalize
    if where == "reader":
        real = RasterSource.read
        monkeypatch.setattr(RasterSource, "read", lambda self, *a, **k: (boom(), real(self, *a, **k))[1])
    elif where == "model":
        predict = lambda b, v: (boom(), _model(b, v))[1]  # noqa: E731
    elif where == "finalize":
        finalize = lambda b, r, v: (boom(), _finalize(b, r, v))[1]  # noqa: E731
    else:
        real_write = RasterWriter.write
        monkeypatch.setattr(RasterWriter, "write", lambda self, *a, **k: (boom(), real_write(self, *a, **k))[1])
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=f"{where} broke"):
        _run(path, out, TilingSpec(window=64, overlap=16, batch_size=2), depth=2, predict=predict, finalize=finalize)
    assert list(out.iterdir()) == []  # hidden temp files included
    assert not [t for t in threading.enumerate() if t.name.startswith("geotool-")]  # every stage has stopped


def test_thumbnails_are_every_step_th_pixel_of_what_was_written(raster_factory, tmp_path):
    path, data = _scene(raster_factory, shape=(3, 301, 517))
    arrays, stats = _run(path, tmp_path / "out", TilingSpec(window=64, overlap=16, batch_size=4), depth=2,
                         thumbnail_step=7, thumbnail_sinks=["classes"])
    th = stats.thumbnails
    assert np.array_equal(th["classes"], arrays["classes"][:, ::7, ::7])
    valid = (data != -1).all(0)
    assert np.array_equal(th["valid"], valid[::7, ::7])
    assert np.array_equal(th["input"], np.where(valid, data, 0)[:, ::7, ::7].astype(np.float32))


def test_negative_pipeline_depth_is_a_config_error(raster_factory, tmp_path):
    from geotool.errors import ConfigError

    path, _ = _scene(raster_factory, shape=(3, 40, 40))
    with pytest.raises(ConfigError):
        _run(path, tmp_path / "out", TilingSpec(window=32, overlap=8), depth=-1)


def test_finalize_without_input_gets_none_and_the_same_outputs(raster_factory, tmp_path):
    path, _ = _scene(raster_factory, shape=(3, 300, 260))
    spec = TilingSpec(window=64, overlap=16, batch_size=4)
    seen = []

    def no_input(blended, raw, valid):
        seen.append(raw)
        out = _finalize(blended, np.zeros((3, *valid.shape), np.float32), valid)
        return out

    with_input, _ = _run(path, tmp_path / "a", spec, depth=2, finalize=lambda b, r, v: _finalize(b, r * 0, v))
    without, _ = _run(path, tmp_path / "b", spec, depth=2, finalize=no_input, finalize_input=False)
    assert seen and all(raw is None for raw in seen)
    assert all(with_input[k].tobytes() == without[k].tobytes() for k in with_input)


@pytest.mark.parametrize("k", [2, 3])
def test_class_argmax_is_argmax_including_ties_and_nans(k):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, (k, 50, 60)).astype(np.float32)  # many ties
    scores[0, :5, :5] = np.nan
    scores[1, 3:8, 3:8] = np.nan
    got = tiling.class_argmax(scores)
    assert got.dtype == np.uint8 and np.array_equal(got, scores.argmax(0))
