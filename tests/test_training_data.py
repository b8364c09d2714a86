"""The training data path: one label file read once, each scene given only its own features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geotool.config import load_config
from geotool.io.raster import read_grid
from geotool.io.vector import VectorLabels, rasterize, read_vector, write_vector
from geotool.segmentation.config import SegmentationConfig

from segmentation_helpers import make_scene, mask_polygons


@pytest.fixture
def two_scenes(tmp_path):
    """Two scenes 10 km apart and one GeoJSON (EPSG:4326) holding the squares of both."""
    frames, images = [], []
    for i, x0 in enumerate((500000.0, 510000.0)):
        grid, mask, img = make_scene(tmp_path / f"scene{i}.tif", seed=i, origin=(x0, 5000000.0))
        frames.append(mask_polygons(mask, grid).assign(scene=i))
        images.append(img)
    labels = tmp_path / "labels.geojson"
    write_vector(pd.concat(frames, ignore_index=True), labels)
    return images, labels


def test_one_label_file_is_read_once_and_each_scene_gets_its_own_features(two_scenes, monkeypatch):
    from geotool.segmentation import data

    images, labels = two_scenes
    reads = []

    def counting_init(self, path, layer=None):
        reads.append(path)
        _init(self, path, layer)

    monkeypatch.setattr(VectorLabels, "__init__", counting_init)
    cfg = load_config(SegmentationConfig, None, {"images": [str(p) for p in images], "labels": [str(labels)],
                                                 "output": "unused", "window": 64, "block": 64})
    train, _ = data.load_scenes(cfg)
    assert len(reads) == 1
    for i, scene in enumerate(train):
        assert len(scene.labels) > 0 and set(scene.labels["scene"]) == {i}  # only the scene's own squares
        # and the same labels as reading the whole file onto that scene
        whole = read_vector(labels, target=scene.grid)
        assert np.array_equal(scene.target[scene.valid] > 0, rasterize(whole, scene.grid)[scene.valid] > 0)


_init = VectorLabels.__init__


def test_for_grid_keeps_the_features_read_vector_gives_in_their_order(two_scenes):
    images, labels = two_scenes
    source = VectorLabels(labels)
    for img in images:
        grid = read_grid(img)
        whole = read_vector(labels, target=grid)
        mine = source.for_grid(grid)
        from shapely.geometry import box

        expected = whole[whole.intersects(box(*grid.bounds)).to_numpy()]
        assert list(mine.index) == list(expected.index)
        assert all(a.equals_exact(b, 0) for a, b in zip(mine.geometry, expected.geometry))
