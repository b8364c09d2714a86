"""The sliding-window engine: exact reconstruction, edges, offsets, georeference, bounded buffers."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from geotool.errors import ConfigError
from geotool.io.raster import RasterSource, RasterWriter
from geotool.io.tiling import TilingSpec, blend_weights, plan_windows, run_tiled, window_starts


def _run(path, tmp_path, spec, predict, channels=1, name="out.tif"):
    out = tmp_path / name
    with RasterSource(path) as src, RasterWriter(out, src.grid, channels, "float32", nodata=-1) as writer:
        stats = run_tiled(
            src, predict, channels, lambda blended, raw, valid: {"out": np.where(valid, blended, -1)},
            {"out": writer}, spec,
        )
    with rasterio.open(out) as ds:
        return ds.read(), ds, stats


@pytest.mark.parametrize(
    "spec",
    [
        TilingSpec(window=64, overlap=16, batch_size=3),
        TilingSpec(window=64, overlap=16, batch_size=5, offset=20),
        TilingSpec(window=50, overlap=0, batch_size=1),
        TilingSpec(window=32, overlap=8, batch_size=4, tta=True),
    ],
)
def test_pointwise_model_is_reproduced_exactly(raster_factory, tmp_path, spec):
    """A per-pixel model must come out unchanged whatever the windows: no offset or blending error."""
    data = np.random.default_rng(0).random((2, 137, 301)).astype(np.float32)  # not a multiple of any window
    path = raster_factory("scene.tif", data)
    out, ds, stats = _run(path, tmp_path, spec, lambda b, v: b[:, :1] * 3 + b[:, 1:2], channels=1)
    assert np.allclose(out[0], data[0] * 3 + data[1], atol=1e-5)
    with RasterSource(path) as src:
        assert stats.n_windows == len(plan_windows(src.grid, spec))


def test_rows_are_emitted_in_column_chunks_exactly(raster_factory, tmp_path, monkeypatch):
    """Finished rows are finalized and written EMIT_COLUMNS at a time; chunk borders leave no trace."""
    from geotool.io import tiling

    monkeypatch.setattr(tiling, "EMIT_COLUMNS", 256)
    data = np.random.default_rng(1).random((2, 300, 700)).astype(np.float32)  # 3 chunks, the last partial
    path = raster_factory("wide.tif", data)
    out, _, _ = _run(path, tmp_path, TilingSpec(window=64, overlap=16, batch_size=4), lambda b, v: b[:, :1] - b[:, 1:2])
    assert np.allclose(out[0], data[0] - data[1], atol=1e-5)


def test_scene_smaller_than_one_window(raster_factory, tmp_path):
    data = np.arange(30, dtype=np.float32).reshape(1, 5, 6)
    path = raster_factory("tiny.tif", data)
    out, ds, stats = _run(path, tmp_path, TilingSpec(window=64, overlap=16), lambda b, v: b + 1)
    assert out.shape == (1, 5, 6) and stats.n_windows == 1
    assert np.allclose(out[0], data[0] + 1, rtol=1e-6)


def test_output_georeference_and_nodata_follow_the_input(raster_factory, tmp_path):
    data = np.ones((1, 40, 70), np.float32)
    data[0, 10:15, 20:30] = -9999
    path = raster_factory("geo.tif", data, crs="EPSG:4326",
                          transform=rasterio.Affine(0.0001, 0, 12.5, 0, -0.0001, 45.2), nodata=-9999)
    out, ds, _ = _run(path, tmp_path, TilingSpec(window=32, overlap=8), lambda b, v: b)
    with rasterio.open(path) as src:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
    assert (out[0, 10:15, 20:30] == -1).all() and np.allclose(out[0][data[0] != -9999], 1, rtol=1e-6)


def test_model_sees_invalid_pixels_as_zero_with_a_mask(raster_factory, tmp_path):
    data = np.full((1, 20, 20), 7, np.int16)
    data[0, :5] = 0
    path = raster_factory("nd.tif", data, nodata=0)
    seen = []

    def predict(batch, valid):
        seen.append((batch.copy(), valid.copy()))
        return batch

    _run(path, tmp_path, TilingSpec(window=16, overlap=4), predict)
    assert seen and any((~v).any() for _, v in seen)  # the loop below checks nodata pixels too
    for batch, valid in seen:
        assert batch.dtype == np.float32
        assert (batch[:, 0][~valid] == 0).all() and (batch[:, 0][valid] == 7).all()


def test_seams_are_absent_for_a_context_model(raster_factory, tmp_path):
    """A model with spatial context and zero padding differs per window near window borders; blending
    with overlap keeps two different tilings close away from the scene edge."""
    data = np.random.default_rng(1).random((1, 160, 160)).astype(np.float32)
    path = raster_factory("ctx.tif", data)

    def smooth(batch, valid):
        return np.stack([ndimage.uniform_filter(b, size=(1, 5, 5), mode="constant") for b in batch])

    a, _, _ = _run(path, tmp_path, TilingSpec(window=64, overlap=32), smooth, name="a.tif")
    b, _, _ = _run(path, tmp_path, TilingSpec(window=64, overlap=32, offset=16), smooth, name="b.tif")
    exact = ndimage.uniform_filter(data[0], size=5, mode="constant")
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(a[0][inner] - b[0][inner]).max() < 0.02
    assert np.abs(a[0][inner] - exact[inner]).max() < 0.02
    no_overlap, _, _ = _run(path, tmp_path, TilingSpec(window=64, overlap=0), smooth, name="c.tif")
    assert np.abs(no_overlap[0][inner] - exact[inner]).max() > 0.1  # the seams the blending removes


def test_window_starts_cover_and_snap():
    assert window_starts(100, 40, 30) == [0, 30, 60]
    assert window_starts(10, 40, 30) == [0]
    assert window_starts(100, 40, 30, offset=10) == [-10, 20, 50, 60]
    for length in (1, 39, 40, 41, 257, 1000):
        starts = window_starts(length, 64, 48, offset=5)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[max(s, 0) : s + 64] = True
        assert covered.all()


def test_blend_weights_are_positive_and_flat_inside():
    w = blend_weights(TilingSpec(window=32, overlap=8))
    assert w.min() > 0 and w[8:24, 8:24].min() == 1.0 and w[0, 0] < 0.05
    assert np.allclose(w, w.T) and np.allclose(w, w[::-1, ::-1])


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 32, "overlap": 32}, {"batch_size": 0},
                                    {"window": 32, "overlap": 8, "offset": 24}])
def test_bad_specs_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        TilingSpec(**kwargs)


def test_gdal_cache_is_megabytes_inside_and_restored_after(raster_factory, tmp_path):
    """GDAL reads an integer GDAL_CACHEMAX as bytes: the engine must give it bytes (a cache of a few bytes
    re-reads every block), and leave the process's own cache size as it found it."""
    from geotool.io.gdal_settings import gdal_cache_max
    from geotool.io.tiling import GDAL_CACHE_MIN_BYTES

    before = gdal_cache_max()
    if before is None:
        pytest.skip("libgdal is not visible to ctypes on this platform")
    seen = []

    def predict(batch, valid):
        seen.append(gdal_cache_max())
        return batch[:, :1]

    path = raster_factory("scene.tif", np.random.default_rng(0).random((1, 70, 90)).astype(np.float32))
    _run(path, tmp_path, TilingSpec(window=32, overlap=8), predict)
    assert seen and min(seen) >= GDAL_CACHE_MIN_BYTES
    assert gdal_cache_max() == before
