"""The window-by-window training data path: lazy readers, bounded caches, per-scene labels, reproducible windows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from rasterio.windows import Window

from geotool.config import load_config
from geotool.io import windows
from geotool.io.raster import RasterSource, write_raster
from geotool.io.vector import rasterize, read_vector, write_vector
from geotool.io.windows import RasterWindows, VectorWindows
from geotool.segmentation.config import SegmentationConfig

from segmentation_helpers import make_scene, mask_polygons


@pytest.fixture
def scenes(tmp_path):
    """Three odd-sized scenes side by side and one GeoJSON (EPSG:4326) of their squares."""
    frames, images = [], []
    for i in range(3):
        grid, mask, img = make_scene(tmp_path / f"s{i}.tif", height=150, width=97, seed=i, origin=(500000.0 + 1000 * i, 5000000.0))
        frames.append(mask_polygons(mask, grid).assign(scene=i))
        images.append(img)
    import pandas as pd

    labels = write_vector(pd.concat(frames, ignore_index=True), tmp_path / "labels.geojson")
    return images, labels


def _cfg(images, labels, **extra):
    return load_config(SegmentationConfig, None, {"images": [str(p) for p in images], "labels": [str(labels)],
                                                  "output": "unused", "window": 32, "block": 32, "val_fraction": 0.3,
                                                  "batch_size": 2, "steps_per_epoch": 8, "seed": 4, **extra})


@pytest.fixture
def fresh(monkeypatch):
    """An empty pool and cache for this test (both are per process)."""
    monkeypatch.setattr(windows, "_POOL", windows._Pool())
    monkeypatch.setattr(windows, "_CACHE", {})
    yield
    windows._POOL.clear()


def test_reader_window_equals_a_direct_read_past_the_edges(scenes, fresh):
    img = scenes[0][0]
    reader = RasterWindows(img, block=32)
    with RasterSource(img) as src:
        for r, c, h, w in [(0, 0, 40, 40), (17, 5, 64, 33), (130, 80, 40, 40), (-8, -3, 20, 20), (140, 90, 1, 1)]:
            want, want_valid = src.read(Window(c, r, w, h))
            got, got_valid = reader.read(Window(c, r, w, h))
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got_valid, want_valid)
            np.testing.assert_array_equal(got[:, got_valid], want[:, want_valid])


def test_open_files_are_bounded_across_scenes(tmp_path, fresh, monkeypatch):
    monkeypatch.setattr(windows, "MAX_OPEN", 3)
    readers = []
    for i in range(7):
        _, _, path = make_scene(tmp_path / f"t{i}.tif", height=40, width=40, seed=i)
        readers.append(RasterWindows(path, block=16))
    for _ in range(2):
        for reader in readers:
            reader.read(Window(0, 0, 40, 40))
            assert len(windows.pool().open) <= 3
    assert windows.pool().opened > 7  # evicted datasets were reopened on demand


def test_cache_bytes_are_bounded(tmp_path, fresh):
    _, _, path = make_scene(tmp_path / "c.tif", height=150, width=97)
    limit = 3 * (3 * 16 * 16 * 2 + 16 * 16)  # three 16-px blocks of uint16 RGB + validity
    reader = RasterWindows(path, block=16, cache_mb=limit / 2**20)
    rng = np.random.default_rng(0)
    for _ in range(40):
        r, c = rng.integers(0, 120), rng.integers(0, 70)
        reader.read(Window(int(c), int(r), 24, 24))
        assert windows.block_cache().nbytes <= limit
    assert windows.block_cache().hits > 0 and len(windows.block_cache().items) == 3


def _read_in_worker(reader):
    return reader.read(Window(3, 5, 30, 30)), windows.pool().opened


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_readers_pickle_and_reopen_in_worker_processes(scenes, fresh, method):
    import multiprocessing

    img = scenes[0][0]
    reader = RasterWindows(img, block=32)
    want = reader.read(Window(3, 5, 30, 30))
    with multiprocessing.get_context(method).Pool(1) as workers:
        (data, valid), opened = workers.apply(_read_in_worker, (reader,))
    np.testing.assert_array_equal(data, want[0])
    np.testing.assert_array_equal(valid, want[1])
    assert opened == 1  # the worker opened the file itself, not through the parent's handle


def test_label_windows_pickle_without_their_index(scenes):
    images, labels = scenes
    grid = RasterWindows(images[0]).grid
    gdf = read_vector(labels, target=grid)
    reader = VectorWindows(gdf.geometry.values, np.ones(len(gdf), np.uint8), grid)
    reader.read(Window(0, 0, 10, 10))
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._tree is None
    np.testing.assert_array_equal(clone.read(Window(0, 0, 97, 150)), rasterize(gdf, grid))
    np.testing.assert_array_equal(clone.read(Window(-4, 7, 80, 90)), rasterize(gdf, grid, window=Window(-4, 7, 80, 90)))


def test_each_scene_gets_only_its_own_features_and_no_pixels_in_memory(scenes):
    from geotool.segmentation.data import load_scenes

    images, labels = scenes
    train, _ = load_scenes(_cfg(images, labels))
    for i, s in enumerate(train):
        assert len(s.labels) and set(s.labels["scene"]) == {i}
        assert not any(isinstance(v, np.ndarray) and v.size >= s.grid.height * s.grid.width for v in vars(s).values())
        assert pickle.loads(pickle.dumps(s)).labels_reader.geometries.shape == (len(s.labels),)


def test_dataset_windows_equal_a_direct_read_and_rasterize(scenes):
    from geotool.segmentation.train import build_training_data

    images, labels = scenes
    data = build_training_data(_cfg(images, labels, augment={"flips": False, "rot90": False, "brightness_contrast": 0.0}))
    ds = data.train_ds
    raw = build_training_data(_cfg(images, labels)).train_scenes
    whole = read_vector(labels)
    for i in range(12):
        k, row, col = ds._draw(np.random.default_rng([ds.seed, ds.epoch, i]))
        img, tgt, valid = raw[k].crop(row, col, ds.window)
        window = Window(col, row, ds.window, ds.window)
        with RasterSource(images[k]) as src:
            want, want_valid = src.read(window, dtype=np.float32)
        grid = raw[k].grid
        burnt = rasterize(whole.to_crs(grid.crs), grid, window=window).astype(np.int64)
        np.testing.assert_array_equal(valid, want_valid)
        np.testing.assert_array_equal(img[:, valid], want[:, valid])
        np.testing.assert_array_equal(tgt[valid], burnt[valid])
        assert (tgt[~valid] == 255).all()
        x, y, v = ds[i]  # the dataset's sample is that window, normalised
        np.testing.assert_array_equal(v, valid)
        np.testing.assert_array_equal(y, tgt)
        np.testing.assert_allclose(x[:, valid], ((img - np.array(data.mean)[:, None, None]) / np.array(data.std)[:, None, None])[:, valid],
                                   rtol=1e-5, atol=1e-5)


def test_same_seed_same_windows_and_split(scenes):
    from geotool.segmentation.train import build_training_data

    images, labels = scenes
    a = build_training_data(_cfg(images, labels, positive_fraction=0.5))
    b = build_training_data(_cfg(images, labels, positive_fraction=0.5))
    c = build_training_data(_cfg(images, labels, positive_fraction=0.5, seed=5))
    assert a.val_items == b.val_items and a.mean == b.mean
    for sa, sb in zip(a.train_scenes, b.train_scenes):
        np.testing.assert_array_equal(sa.val_blocks, sb.val_blocks)
    draws = [[d.train_ds._draw(np.random.default_rng([d.train_ds.seed, 0, i])) for i in range(20)] for d in (a, b, c)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    for i in range(4):
        for x, y in zip(a.train_ds[i], b.train_ds[i]):
            np.testing.assert_array_equal(x, y)


def test_windows_stay_inside_their_region_and_positives_are_positive(scenes):
    from geotool.segmentation.train import build_training_data

    images, labels = scenes
    data = build_training_data(_cfg(images, labels, positive_fraction=1.0))
    ds = data.train_ds
    for i in range(30):
        k, row, col = ds._draw(np.random.default_rng([ds.seed, 0, i]))
        s = ds.scenes[k]
        region = s.train_region
        assert region[max(row, 0) : row + ds.window, max(col, 0) : col + ds.window].all()
        _, tgt, _ = s.crop(row, col, ds.window)
        assert ((tgt > 0) & (tgt != 255)).any()
    for k, row, col in data.val_items:
        assert data.val_scenes[k].val_region[row : row + ds.window, col : col + ds.window].all()


def test_mask_raster_labels_read_by_window(tmp_path):
    from geotool.errors import ConfigError
    from geotool.segmentation.data import load_scene

    grid, mask, img = make_scene(tmp_path / "m.tif", height=70, width=45)
    write_raster(tmp_path / "mask.tif", mask, grid)
    cfg = _cfg([img], tmp_path / "mask.tif")
    s = load_scene(str(img), str(tmp_path / "mask.tif"), cfg, 2, 0, 0.25)
    _, tgt, valid = s.crop(-5, 3, 64)
    want = np.full((64, 64), 255, np.int64)
    want[5:, : 45 - 3] = mask[:59, 3:]
    want[~valid] = 255
    np.testing.assert_array_equal(tgt, want)
    assert len(s.positive_cells)
    bad = mask.copy()
    bad[0, 20] = 7
    write_raster(tmp_path / "bad.tif", bad, grid)
    with pytest.raises(ConfigError, match=r"class ids \[7\]"):
        load_scene(str(img), str(tmp_path / "bad.tif"), cfg, 2, 0, 0.25)


def test_vectorised_rasterize_equals_gdal_on_holes_multiparts_and_overlaps():
    import shapely
    from affine import Affine
    from rasterio import features

    from geotool.io.vector import rasterize_polygons

    rng = np.random.default_rng(1)
    transform = Affine(0.5, 0, 1000.0, 0, -0.5, 2000.0)
    geoms = []
    for i in range(150):
        cx, cy = 1000 + rng.uniform(-5, 60), 2000 - rng.uniform(-5, 45)
        p = shapely.affinity.rotate(shapely.Point(cx, cy).buffer(rng.uniform(0.5, 6), quad_segs=int(rng.integers(1, 5))),
                                    rng.uniform(0, 180))
        holed = p.difference(shapely.Point(cx, cy).buffer(rng.uniform(0.3, 2)))
        geoms.append(holed if i % 4 == 0 and not holed.is_empty else p)
    geoms.append(shapely.MultiPolygon([shapely.box(1001, 1990, 1005, 1995), shapely.box(1010, 1990, 1012, 1999)]))
    geoms.append(shapely.LineString([(1000, 2000), (1010, 1990)]))  # not polygonal: ignored by both
    values = rng.integers(1, 200, len(geoms)).astype(np.uint8)
    for shape in [(90, 110), (7, 300)]:
        want = features.rasterize(zip(geoms[:-1], values[:-1].tolist()), out_shape=shape, transform=transform, dtype="uint8")
        got = rasterize_polygons(geoms, values, shape, transform)
        assert (want > 0).sum() > 100
        np.testing.assert_array_equal(got, want)
    apart = [shapely.box(1000 + 3 * i, 1990, 1001.2 + 3 * i, 1999) for i in range(10)]  # no span overlaps another
    want = features.rasterize(zip(apart, range(1, 11)), out_shape=(30, 40), transform=transform, dtype="uint8")
    np.testing.assert_array_equal(rasterize_polygons(apart, np.arange(1, 11), (30, 40), transform), want)


@pytest.mark.parametrize("h,w,block,window", [(100, 90, 32, 32), (20, 25, 32, 32), (97, 200, 40, 30), (50, 60, 16, 64)])
def test_block_positions_are_the_pixel_mask_positions(h, w, block, window):
    from geotool.training.split import BlockPositions, expand_blocks, split_blocks, window_positions

    rng = np.random.default_rng(0)
    blocks = split_blocks(h, w, block, 0.3, seed=2)
    for region in (blocks, ~blocks):
        pos = BlockPositions(region, block, h, w, window)
        want = window_positions(expand_blocks(region, block, h, w), window)
        got = pos.to_array()
        key = lambda a: a[np.lexsort((a[:, 1], a[:, 0]))]  # noqa: E731
        np.testing.assert_array_equal(key(got), key(want))
        allowed = {tuple(p) for p in want.tolist()}
        for _ in range(50):
            r0, c0 = int(rng.integers(-10, h)), int(rng.integers(-10, w))
            found = pos.sample_within(r0, r0 + window - 1, c0, c0 + window - 1, rng)
            near = {p for p in allowed if r0 <= p[0] < r0 + window and c0 <= p[1] < c0 + window}
            assert (found is None) == (not near) and (found is None or found in near)
            assert pos.contains(r0, c0) == ((r0, c0) in allowed)
