"""On-the-fly OBA in train-segmentation: bank from the training blocks only, validation never augmented."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.config import load_config
from geotool.io.vector import write_vector
from geotool.segmentation.config import SegmentationConfig
from geotool.segmentation.train import build_training_data

from segmentation_helpers import LIGHT_YAML, make_scene, mask_polygons

OBA = {"probability": 1.0, "n_objects": [2, 4], "min_gap": 1, "blend": "hard", "brightness": 0.0, "contrast": 0.0,
       "scale_range": [1.0, 1.0]}


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("segoba")
    grid, mask, img = make_scene(d / "scene.tif", height=192, width=160)
    labels = d / "labels.geojson"
    write_vector(mask_polygons(mask, grid), labels)  # EPSG:4326 labels on a UTM raster
    return d, grid, mask, img, labels


def _config(img, labels, out, oba=None):
    return load_config(SegmentationConfig, None, {
        "images": [str(img)], "labels": [str(labels)], "output": str(out), "window": 64, "block": 64,
        "batch_size": 4, "steps_per_epoch": 4, "val_fraction": 0.3, "seed": 3, "oba": oba,
        "augment": {"flips": False, "rot90": False, "brightness_contrast": 0.0},
    })


def _objects_inside(mask: np.ndarray, region: np.ndarray) -> int:
    from scipy import ndimage

    lab, n = ndimage.label(mask > 0)
    return sum(bool(region[lab == i].all()) for i in range(1, n + 1))


def test_bank_holds_only_training_block_objects(scene):
    d, grid, mask, img, labels = scene
    data = build_training_data(_config(img, labels, d / "run", OBA))
    s = data.train_scenes[0]
    bank = data.train_ds.sample_transform.bank
    expected = _objects_inside(mask, s.train_region & s.valid)
    assert 0 < expected < _objects_inside(mask, np.ones_like(s.valid))
    assert len(bank) == expected


def test_validation_identical_with_and_without_oba_training_changed(scene):
    d, grid, mask, img, labels = scene
    plain = build_training_data(_config(img, labels, d / "run"))
    oba = build_training_data(_config(img, labels, d / "run", OBA))
    assert plain.train_ds.sample_transform is None and oba.train_ds.sample_transform is not None
    assert len(plain.val_ds) == len(oba.val_ds) > 0
    for i in range(len(plain.val_ds)):
        for a, b in zip(plain.val_ds[i], oba.val_ds[i]):
            np.testing.assert_array_equal(a, b)
    gained = 0
    for i in range(8):
        (xp, yp, vp), (xo, yo, vo) = plain.train_ds[i], oba.train_ds[i]
        np.testing.assert_array_equal(vp, vo)
        changed = (yo != yp)
        # pasted pixels only turn background into objects, and the image changes exactly there or nearby
        assert ((yp[changed] == 0) & (yo[changed] == 1)).all()
        gained += int(changed.sum())
        assert not np.array_equal(xp, xo) or not changed.any()
    assert gained > 0


def test_cli_oba_with_workers_records_the_bank(scene, tmp_path):
    d, grid, mask, img, labels = scene
    oba_yaml = tmp_path / "oba.yaml"
    oba_yaml.write_text("n_objects: [1, 3]\nblend: gaussian\n")
    light = tmp_path / "light.yaml"  # the light Unet: this test is about the wiring
    light.write_text(LIGHT_YAML)
    res = CliRunner().invoke(app, [str(a) for a in (
        "train-segmentation", "--images", img, "--labels", labels, "--config", light, "--output", tmp_path / "run", "--window", "64",
        "--block", "64", "--batch-size", "2", "--max-steps", "2", "--steps-per-epoch", "2", "--threads", "1",
        "--accelerator", "cpu", "--oba", oba_yaml, "--oba-probability", "0.9", "--workers", "1", "--seed", "2")])
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "run" / "geotool.json").read_text())
    text = json.dumps(side)
    assert '"probability": 0.9' in text and '"n_objects": [1, 3]' in text
    assert (tmp_path / "run" / "model.ckpt").exists()


def test_cli_oba_bad_yaml_is_a_clean_error(scene, tmp_path):
    d, grid, mask, img, labels = scene
    bad = tmp_path / "oba.yaml"
    bad.write_text("n_objectz: [1, 3]\n")
    res = CliRunner().invoke(app, [str(a) for a in (
        "train-segmentation", "--images", img, "--labels", labels, "--output", tmp_path / "run", "--oba", bad)])
    assert res.exit_code == 2
    assert "oba" in res.output and not (tmp_path / "run").exists()


def test_bank_from_mask_raster_labels(scene):
    from geotool.io.raster import write_raster

    d, grid, mask, img, labels = scene
    mask_tif = d / "mask.tif"
    write_raster(mask_tif, mask[None], grid, nodata=None)
    data = build_training_data(_config(img, mask_tif, d / "run", OBA))
    s = data.train_scenes[0]
    assert len(data.train_ds.sample_transform.bank) == _objects_inside(mask, s.train_region & s.valid)


def test_objects_are_resampled_to_the_window_scene_pixel_size(scene):
    d, grid, mask, img, labels = scene
    cfg = {**OBA, "n_objects": [1, 1], "min_gap": 0}
    hook = build_training_data(_config(img, labels, d / "run", cfg)).train_ds.sample_transform
    hook.res = [2.0, 4.0]  # as if the dataset's second scene had 4 m pixels (the bank's objects are 2 m)
    image = np.zeros((3, 64, 64), np.float32)
    area = {0: 0, 1: 0}
    for k in range(20):
        for s in (0, 1):
            _, m = hook(image, np.zeros((64, 64), np.int64), np.ones((64, 64), bool), np.random.default_rng(k), scene=s)
            area[s] += int((m == 1).sum())
    assert 3.0 < area[0] / max(area[1], 1) < 5.5  # half the side, a quarter of the area


def test_paste_classes_by_segmentation_class_name(scene):
    from geotool.errors import ConfigError

    d, grid, mask, img, labels = scene
    by_name = build_training_data(_config(img, labels, d / "run", {**OBA, "paste_classes": ["foreground"]}))
    by_id = build_training_data(_config(img, labels, d / "run", {**OBA, "paste_classes": [1]}))
    assert len(by_name.train_ds.sample_transform.bank) == len(by_id.train_ds.sample_transform.bank) > 0
    with pytest.raises(ConfigError, match="Roof"):
        build_training_data(_config(img, labels, d / "run", {**OBA, "paste_classes": ["Roof"]}))
