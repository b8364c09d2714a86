"""train-segmentation -> predict -> evaluate end to end on tiny scenes (CPU, a few steps)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.raster import RasterSource, read_grid, write_raster
from geotool.io.vector import write_vector

from segmentation_helpers import LIGHT_YAML, UTM, make_scene, mask_polygons

runner = CliRunner()
FAST = ["--window", "64", "--block", "64", "--batch-size", "4", "--max-steps", "4", "--steps-per-epoch", "2",
        "--threads", "1", "--accelerator", "cpu"]
# The light Unet (segmentation_helpers.LIGHT_YAML): these tests are about the command's plumbing, and a resnet18
# Unet (checkpoints of 130 MB with the optimizer state) took three times as long to train, save and predict with.


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("seg")
    grid, mask, img = make_scene(d / "scene.tif")
    labels = d / "labels.geojson"
    write_vector(mask_polygons(mask, grid), labels)  # EPSG:4326 labels on a UTM raster
    (d / "light.yaml").write_text(LIGHT_YAML)
    res = invoke("train-segmentation", "--images", img, "--labels", labels, "--task", "buildings", "--config", d / "light.yaml",
                 "--output", d / "run", "--seed", "1", *FAST)
    assert res.exit_code == 0, res.output
    return d, grid, mask, img, labels


def test_train_outputs(trained):
    d = trained[0]
    for name in ("model.ckpt", "metrics.csv", "training_curves.png", "geotool.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (d / "run" / name).exists(), name
    assert list((d / "run" / "previews").glob("*.png"))


def test_learning_rate_schedule_spans_the_planned_steps(trained, tmp_path):
    import torch

    d, _, _, img, labels = trained
    assert torch.load(d / "run/checkpoints/last.ckpt", weights_only=False)["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-3
    # --max-epochs 1 caps the 4 steps at 2: linear decay spans those 2 and ends at half the rate, not at 1/4.
    res = invoke("train-segmentation", "--images", img, "--labels", labels, "--task", "buildings", "--config", d / "light.yaml",
                 "--output", tmp_path / "run", *FAST, "--max-epochs", "1", "--lr-schedule", "linear-decay")
    assert res.exit_code == 0, res.output
    last = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert last["lr_schedulers"][0]["last_epoch"] == 2
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)


def test_training_again_into_a_run_folder_says_it_replaces_the_run(trained, tmp_path, recwarn):
    d, _, _, img, labels = trained
    args = ["train-segmentation", "--images", img, "--labels", labels, "--config", d / "light.yaml", "--output", tmp_path / "run",
            *FAST, "--max-steps", "1"]
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "already holds a training run" not in first.output and "already holds a training run" in second.output
    # geotool says it once in its own words; Lightning's notices about the folder are silenced.
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]


def test_predict_georeference_nodata_polygons_and_evaluate(trained):
    d, grid, mask, img, labels = trained
    out = d / "pred"
    res = invoke("predict", d / "run/model.ckpt", img, "--output", out, "--polygons", out / "p.gpkg", "--probabilities", "--threads", "1")
    assert res.exit_code == 0, res.output
    cls = out / "scene_classes.tif"
    g = read_grid(cls)
    assert g.crs == grid.crs and g.transform == grid.transform and g.shape == grid.shape
    with RasterSource(cls) as src:
        data, valid = src.read()
    assert (data[0, :10, :10] == 255).all() and not valid[:10, :10].any()
    assert set(np.unique(data[0, 10:, 10:])) <= {0, 1}
    with RasterSource(out / "scene_probs.tif") as src:
        probs, _ = src.read()
    assert np.allclose(probs[:, 20:, 20:].sum(0), 1.0, atol=1e-4)
    assert (out / "p.gpkg").exists() and (out / "scene_preview.png").exists()
    res = invoke("evaluate", cls, labels, "--output", d / "m.json")
    assert res.exit_code == 0, res.output
    import json

    m = json.loads((d / "m.json").read_text())
    assert m["pixels"] == grid.width * grid.height - 100
    assert "objects" in m and (d / "m.csv").exists()
    assert np.array(m["confusion_matrix"]).sum() == m["pixels"]


def test_predict_odd_and_tiny_rasters_and_determinism(trained, tmp_path):
    d = trained[0]
    make_scene(tmp_path / "tiny.tif", height=40, width=30, nodata_corner=False)
    make_scene(tmp_path / "odd.tif", height=131, width=77, seed=3)
    for rep in ("a", "b"):
        res = invoke("predict", d / "run/model.ckpt", tmp_path / "tiny.tif", tmp_path / "odd.tif", "--output", tmp_path / rep,
                     "--no-preview", "--threads", "1")
        assert res.exit_code == 0, res.output
    for name in ("tiny_classes.tif", "odd_classes.tif"):
        a, b = tmp_path / "a" / name, tmp_path / "b" / name
        assert read_grid(a).shape == read_grid(tmp_path / name.replace("_classes", "")).shape
        with RasterSource(a) as sa, RasterSource(b) as sb:
            assert np.array_equal(sa.read()[0], sb.read()[0])


def test_no_seams_between_two_window_offsets(trained, tmp_path):
    d = trained[0]
    _, _, img = make_scene(tmp_path / "big.tif", height=300, width=260, seed=4, nodata_corner=False)
    # Offsets are a multiple of the network's output stride (8 px for 3 stages), so the two tilings differ only in where
    # window borders fall: a seam from the blending would show as a difference along those borders.
    probs, classes = [], []
    for off in (0, 32):
        res = invoke("predict", d / "run/model.ckpt", img, "--output", tmp_path / f"o{off}", "--probabilities",
                     "--window", "128", "--overlap", "64", "--offset", str(off), "--no-preview", "--threads", "1")
        assert res.exit_code == 0, res.output
        with RasterSource(tmp_path / f"o{off}" / "big_probs.tif") as src:
            probs.append(src.read()[0][1])
        with RasterSource(tmp_path / f"o{off}" / "big_classes.tif") as src:
            classes.append(src.read()[0][0])
    inner = (slice(64, -64), slice(64, -64))
    diff = np.abs(probs[0][inner] - probs[1][inner])
    # A 4-step model is sensitive to window context (zero padding), so probabilities differ a little everywhere,
    # by an amount that depends on how its few steps went. A seam is a difference concentrated where window
    # borders of either tiling fall (every 32 px here): compare those pixels with the rest.
    def near_border(n):
        x = np.arange(64, n - 64) % 32
        return np.minimum(x, 32 - x) <= 2

    border = near_border(300)[:, None] | near_border(260)[None, :]
    assert diff[border].mean() < 1.5 * diff[~border].mean() + 0.005, (diff[border].mean(), diff[~border].mean())
    assert diff.mean() < 0.15
    assert (classes[0][inner] == classes[1][inner]).mean() > 0.9


def test_reprojected_labels_land_on_the_right_pixels(trained):
    from geotool.segmentation.config import SegmentationConfig
    from geotool.segmentation.data import load_scene

    d, grid, mask, img, labels = trained
    cfg = SegmentationConfig(images=[str(img)], labels=[str(labels)], window=64)
    scene = load_scene(str(img), str(labels), cfg, 2, 0, 0.0)
    got = scene.target.copy()
    ok = scene.valid
    agree = (got[ok] == mask[ok]).mean()
    assert agree > 0.995


def test_mask_raster_labels_and_wrong_grid(tmp_path):
    from geotool.errors import RasterMismatchError
    from geotool.segmentation.config import SegmentationConfig
    from geotool.segmentation.data import load_scene

    grid, mask, img = make_scene(tmp_path / "s.tif")
    write_raster(tmp_path / "m.tif", mask, grid)
    cfg = SegmentationConfig(images=[str(img)], labels=[str(tmp_path / "m.tif")], window=64)
    s = load_scene(str(img), str(tmp_path / "m.tif"), cfg, 2, 0, 0.25)
    assert np.array_equal(s.target[s.valid], mask[s.valid].astype(np.int64))
    g2, m2, _ = make_scene(tmp_path / "other.tif", height=60, width=60)
    write_raster(tmp_path / "m2.tif", m2, g2)
    with pytest.raises(RasterMismatchError):
        load_scene(str(img), str(tmp_path / "m2.tif"), cfg, 2, 0, 0.25)


def test_bad_inputs_give_clean_errors_and_no_output(trained, tmp_path):
    d, grid, mask, img, labels = trained
    # wrong band count
    make_scene(tmp_path / "two.tif", bands=2)
    res = invoke("predict", d / "run/model.ckpt", tmp_path / "two.tif", "--output", tmp_path / "o1")
    assert res.exit_code == 2 and "bands the model was trained on" in res.output and not (tmp_path / "o1").exists()
    # corrupted checkpoint
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes((d / "run/model.ckpt").read_bytes()[:500])
    res = invoke("predict", bad, img, "--output", tmp_path / "o2")
    assert res.exit_code == 2 and "corrupted" in res.output and not (tmp_path / "o2").exists()
    # missing file
    res = invoke("predict", d / "run/model.ckpt", tmp_path / "nope.tif", "--output", tmp_path / "o3")
    assert res.exit_code == 2 and "nope.tif" in res.output and not (tmp_path / "o3").exists()
    # labels outside the image
    far = mask_polygons(mask, grid).to_crs(UTM)
    far["geometry"] = far.geometry.translate(50000, 0)
    write_vector(far, tmp_path / "far.gpkg")
    res = invoke("train-segmentation", "--images", img, "--labels", tmp_path / "far.gpkg", "--output", tmp_path / "run", *FAST)
    assert res.exit_code == 2 and "overlap" in res.output and not (tmp_path / "run").exists()
    # unknown architecture: caught before any output
    res = invoke("train-segmentation", "--images", img, "--labels", labels, "--output", tmp_path / "run2", "--arch", "Nope", *FAST)
    assert res.exit_code == 2 and "architecture" in res.output


def test_model_options_travel_in_the_checkpoint(trained, tmp_path):
    d, grid, mask, img, labels = trained
    cfg = tmp_path / "small.yaml"
    cfg.write_text("encoder: timm-mobilenetv3_small_minimal_100\nmodel_options: {encoder_depth: 3, decoder_channels: [32, 16, 8]}\n")
    res = invoke("train-segmentation", "--images", img, "--labels", labels, "--task", "buildings", "--config", cfg,
                 "--output", tmp_path / "run", *FAST)
    assert res.exit_code == 0, res.output
    res = invoke("predict", tmp_path / "run/model.ckpt", img, "--output", tmp_path / "pred", "--no-preview", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert read_grid(tmp_path / "pred/scene_classes.tif").shape == grid.shape
    cfg.write_text("model_options: {encoder_depthh: 3}\n")
    res = invoke("train-segmentation", "--images", img, "--labels", labels, "--config", cfg, "--output", tmp_path / "bad", *FAST)
    assert res.exit_code == 2 and "encoder_depthh" in res.output and not (tmp_path / "bad").exists()
