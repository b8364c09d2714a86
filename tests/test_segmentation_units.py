"""Units of the shared training infrastructure and the segmentation metrics."""

from __future__ import annotations

import numpy as np
import pytest

from geotool.segmentation.evaluate import confusion_metrics, object_f1
from geotool.training.normalization import band_statistics, normalize
from geotool.training.sampler import ArrayScene, RandomWindowDataset, grid_windows
from geotool.training.split import block_split, window_positions


def _scene(h=100, w=90, val_fraction=0.3, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(2, h, w)).astype(np.float32)
    target = np.zeros((h, w), np.int64)
    target[60:64, 70:74] = 1
    valid = np.ones((h, w), bool)
    return ArrayScene(image, target, valid, block_split(h, w, 32, val_fraction, seed))


def test_block_split_is_blockwise_seeded_and_nonempty():
    a = block_split(100, 90, 32, 0.3, seed=1)
    assert np.array_equal(a, block_split(100, 90, 32, 0.3, seed=1))
    assert a.any() and (~a).any()
    # constant on every 32 x 32 block
    for r in range(0, 100, 32):
        for c in range(0, 90, 32):
            blk = a[r : r + 32, c : c + 32]
            assert blk.all() or not blk.any()


def test_windows_never_straddle_the_split():
    s = _scene()
    for split, region in (("train", s.train_region), ("val", s.val_region)):
        for r, c in s.positions(split, 32):
            assert region[max(r, 0) : r + 32, max(c, 0) : c + 32].all()
    ds = RandomWindowDataset([s], 32, 50, seed=3)
    assert len(ds.pos[0]) > 0


def test_small_scene_is_padded_not_skipped():
    s = _scene(20, 25, val_fraction=0.0)
    pos = window_positions(s.train_region, 32)
    assert len(pos) > 0
    ds = RandomWindowDataset([s], 32, 4, seed=0, ignore_index=255)
    img, mask, valid = ds[0]
    assert img.shape == (2, 32, 32) and valid.sum() == 20 * 25
    assert (mask[~valid] == 255).all() and (img[:, ~valid] == 0).all()


def test_sampler_reproducible_and_positive_balanced():
    s = _scene(val_fraction=0.0)
    a = RandomWindowDataset([s], 32, 20, seed=5, positive_fraction=1.0)
    b = RandomWindowDataset([s], 32, 20, seed=5, positive_fraction=1.0)
    for i in range(20):
        xa, ya, _ = a[i]
        xb, yb, _ = b[i]
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert (ya == 1).any()  # every window holds a positive pixel
    uniform = RandomWindowDataset([s], 32, 40, seed=5)
    assert sum((uniform[i][1] == 1).any() for i in range(40)) < 40


def test_sample_transform_is_applied_to_training_only():
    s = _scene(val_fraction=0.0)
    calls = []

    def mark(image, mask, valid, rng):
        calls.append(1)
        return image + 100.0, mask

    ds = RandomWindowDataset([s], 32, 3, seed=0, sample_transform=mark)
    img, _, _ = ds[0]
    assert calls and img.mean() > 50
    items = grid_windows([_scene()], 32, "val", 4, 0)
    assert items  # validation windows come from crop() with no transform (see train._FixedWindows)


def test_band_statistics_only_from_masked_pixels():
    img = np.stack([np.full((4, 4), 2.0), np.arange(16.0).reshape(4, 4)]).astype(np.float32)
    m = np.zeros((4, 4), bool)
    m[0, :2] = True
    mean, std = band_statistics([img], [m])
    assert mean == pytest.approx([2.0, 0.5]) and std[1] == pytest.approx(0.5)
    assert normalize(img, mean, std)[1, 0, 1] == pytest.approx(1.0)


def test_confusion_metrics_values():
    conf = np.array([[8, 2], [1, 4]])
    m = confusion_metrics(conf, ["bg", "fg"])
    assert m["per_class"]["fg"]["iou"] == pytest.approx(4 / 7)
    assert m["per_class"]["fg"]["precision"] == pytest.approx(4 / 6)
    assert m["per_class"]["fg"]["recall"] == pytest.approx(4 / 5)
    assert m["micro"]["f1"] == pytest.approx(12 / 15)
    assert m["macro"]["iou"] == pytest.approx((8 / 11 + 4 / 7) / 2)


def test_object_f1_matches_at_iou_half():
    ref = np.zeros((20, 20), bool)
    ref[2:6, 2:6] = True  # matched exactly
    ref[10:14, 10:14] = True  # predicted with IoU 4/16 < 0.5
    pred = np.zeros_like(ref)
    pred[2:6, 2:6] = True
    pred[10:11, 10:14] = True
    pred[17:19, 17:19] = True  # false positive
    o = object_f1(pred, ref)
    assert (o["matched"], o["predicted_objects"], o["reference_objects"]) == (1, 3, 2)
    assert o["f1"] == pytest.approx(2 / 5)


def test_constant_band_is_not_divided_by_zero():
    rng = np.random.default_rng(0)
    img = np.stack([rng.normal(100, 10, (20, 20)), np.full((20, 20), 255.0)]).astype(np.float32)
    stats = band_statistics([img], [np.ones((20, 20), bool)])
    mean, std = stats
    assert std[1] == 255.0 and stats.constant == [1]
    perturbed = img.copy()
    perturbed[1, 5, 5] = 250.0  # e.g. a feathered paste touching an alpha band
    assert abs(normalize(perturbed, mean, std)[1, 5, 5]) < 0.1
    assert std[0] == pytest.approx(10, rel=0.2)


def test_a_small_scene_is_split_in_one_window_blocks_with_a_note(tmp_path, caplog):
    import logging

    from geotool.config import load_config
    from geotool.errors import ConfigError
    from geotool.io.vector import write_vector
    from geotool.segmentation.config import SegmentationConfig
    from geotool.segmentation.data import load_scenes
    from segmentation_helpers import make_scene, mask_polygons

    grid, mask, image = make_scene(tmp_path / "small.tif", height=150, width=130)
    labels = write_vector(mask_polygons(mask, grid), tmp_path / "l.gpkg")
    cfg = load_config(SegmentationConfig, None, {"images": [str(image)], "labels": [str(labels)], "output": str(tmp_path / "r"),
                                                 "window": 64, "class_names": ["background", "building"]})
    with caplog.at_level(logging.WARNING, logger="geotool"):
        train, val = load_scenes(cfg)
    assert "--block 64" in caplog.text and val[0].val_region.any() and (~val[0].val_region).any()
    with pytest.raises(ConfigError, match="too small to hold out whole 64-px validation blocks"):
        load_scenes(cfg.model_copy(update={"block": 256}))  # a block the user chose is kept, and cannot split
