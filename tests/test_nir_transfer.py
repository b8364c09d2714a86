"""Training on many scenes (--val-scenes), radiometric harmonisation and colour jitter (CPU, seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from typer.testing import CliRunner

from geotool.cli.main import app
from nir_helpers import TINY, context_scene

runner = CliRunner()
QUICK = [*TINY, "--max-steps", 4, "--steps-per-epoch", 2, "--lr", 0.001, "--seed", 5, "--threads", 1, "--export", "last"]


def _run(args):
    return runner.invoke(app, ["-q", *[str(a) for a in args]])


def _brightened(scene, path, gain=0.8, offset=30):
    """An affine (per-band gain and offset) copy of ``scene``'s RGB, NIR unchanged: another illumination."""
    with rasterio.open(scene) as src:
        data, profile = src.read(), src.profile
    rgb = np.clip(np.rint(data[:3].astype(float) * gain + offset), 1, 255)
    data[:3] = np.where(data[:3] > 0, rgb, 0)  # nodata stays nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture(scope="session")
def harmonised(tmp_path_factory):
    """A model trained on two scenes (a folder) with --harmonise moments, the third held out by --val-scenes."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("transfer")
    scenes = base / "scenes"
    scenes.mkdir()
    for seed in range(3):
        context_scene(scenes / f"date{seed}.tif", size=96, seed=seed, nodata_corner=6 * seed)
    run = base / "run"
    few = base / "two_val_windows.yaml"
    few.write_text("val_windows: 2\n")  # each epoch's preview draws the validation windows: two are enough here
    res = _run(["train-nir", scenes, "--output", run, *QUICK, "--harmonise", "moments", "--val-scenes", "date2", "--config", few])
    assert res.exit_code == 0, res.output
    return base, scenes, run


def test_val_scenes_are_held_out_whole_and_the_others_train_whole(harmonised):
    base, scenes, run = harmonised
    results = json.loads((run / "geotool.json").read_text())["results"]
    assert [p.rsplit("/", 1)[-1] for p in results["train_scenes"]] == ["date0.tif", "date1.tif"]
    assert [p.rsplit("/", 1)[-1] for p in results["val_scenes"]] == ["date2.tif"]
    payload = torch.load(run / "model.ckpt", weights_only=False)
    assert payload["train"]["val_scenes"] == results["val_scenes"]


def test_validation_windows_come_from_the_held_out_scene_only(tmp_path):
    from geotool.nir.data import PairedScene, validation_windows
    from geotool.training.sampler import RandomWindowDataset

    def scene(split, valid_rows=40):
        valid = np.zeros((40, 64), bool)
        valid[:valid_rows] = True
        return PairedScene("s", np.ones((3, 40, 64), np.float32), np.zeros((40, 64), np.float32), valid, split)

    scenes = [scene(64), scene(64, valid_rows=20), scene(0)]  # two trained whole, one held out whole
    val = validation_windows(scenes, 16)
    assert {k for k, _, _ in val.items} == {2}
    # scenes are drawn in proportion to their valid training pixels: 2:1, never the held-out one
    sampler = RandomWindowDataset(scenes, 16, 10, 0, "train", min_valid=0.5)
    assert np.allclose(sampler.weights, [2 / 3, 1 / 3, 0])


@pytest.mark.parametrize("args, message", [
    (["--val-scenes", "nosuch"], "--val-scenes nosuch matches none"),
    (["--val-scenes", "date*"], "holds out all"),
    (["--harmonise", "gamma"], "harmonise"),
    (["--color-jitter", "-1"], "--color-jitter"),
])
def test_bad_transfer_options_are_one_clear_line(harmonised, tmp_path, args, message):
    _, scenes, _ = harmonised
    res = _run(["train-nir", scenes, "--output", tmp_path / "run", *QUICK, *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "run").exists()


def test_moments_transform_matches_the_reference_exactly_and_histogram_its_quantiles():
    from geotool.nir.harmonise import Harmoniser

    rng = np.random.default_rng(0)
    train = [rng.gamma(2.0, 0.1, (3, 4000)), rng.uniform(0.2, 0.6, (3, 3000))]
    scene = rng.normal(0.5, 0.2, (3, 5000))
    pooled = np.concatenate(train, axis=1)
    moved = Harmoniser.fit("moments", train).for_scene(scene).apply(scene)
    assert np.allclose(moved.mean(axis=1), pooled.mean(axis=1), atol=1e-5)
    assert np.allclose(moved.std(axis=1), pooled.std(axis=1), atol=1e-5)
    matched = Harmoniser.fit("histogram", train).for_scene(scene).apply(scene)
    for q in (0.1, 0.5, 0.9):
        assert np.allclose(np.quantile(matched, q, axis=1), np.quantile(pooled, q, axis=1), atol=0.01)
    batch = np.stack([scene.reshape(3, 50, 100)] * 2)  # (B, 3, h, w): the engine's batches
    t = Harmoniser.fit("moments", train).for_scene(scene)
    assert np.allclose(t.apply(batch)[1], t.apply(scene.reshape(3, 50, 100)), atol=1e-6)
    assert Harmoniser.fit("none", train).for_scene(scene).apply(scene) is scene


def test_harmonisation_is_stored_and_undoes_an_illumination_change_at_generation(harmonised, tmp_path):
    base, scenes, run = harmonised
    payload = torch.load(run / "model.ckpt", weights_only=False)
    assert payload["harmonise"]["kind"] == "moments" and np.asarray(payload["harmonise"]["reference"]).shape == (3, 2)
    unharmonised = tmp_path / "none.ckpt"  # the same weights, generated without harmonisation
    torch.save({**payload, "harmonise": {"kind": "none", "reference": None}}, unharmonised)
    bright = _brightened(scenes / "date2.tif", tmp_path / "bright.tif")
    out = {}
    for model in (run / "model.ckpt", unharmonised):
        for name, path in (("orig", scenes / "date2.tif"), ("bright", bright)):
            target = tmp_path / f"{model.stem}_{name}.tif"
            res = _run(["generate-nir", model, path, "--output", target, "--threads", 1])
            assert res.exit_code == 0, res.output
            with rasterio.open(target) as src:
                out[model.stem, name] = src.read(1).astype(float)
            if name == "bright":
                side = json.loads((tmp_path / f"{target.name}.json").read_text())["results"]
                out[model.stem, "side"] = side
    gap = {m: np.abs(out[m, "orig"] - out[m, "bright"]).mean() for m in ("model", "none")}
    assert gap["model"] < 0.25 * gap["none"], gap
    harm = out["model", "side"]
    assert harm["harmonise"]["kind"] == "moments" and len(harm["harmonise"]["mean"]) == 3
    # the sidecar's domain: far before harmonisation, near after it (what the network saw)
    assert harm["domain"]["harmonised"]["distance"] < 0.3 * harm["domain"]["distance"]
    assert out["none", "side"]["harmonise"] == {"kind": "none"} and "harmonised" not in out["none", "side"]["domain"]


def test_color_jitter_is_seeded_and_leaves_the_target_alone():
    from geotool.nir.data import PairedScene, training_windows

    rng = np.random.default_rng(1)
    scene = PairedScene("s", rng.uniform(0.1, 0.9, (3, 48, 48)).astype(np.float32), rng.uniform(0, 1, (48, 48)).astype(np.float32),
                        np.ones((48, 48), bool), 48)
    draw = lambda seed, jitter: [training_windows([scene], 16, 6, seed, jitter=jitter)[i] for i in range(6)]  # noqa: E731
    a, b, other, plain = draw(0, 0.5), draw(0, 0.5), draw(1, 0.5), draw(0, 0.0)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not any(np.array_equal(x[0], y[0]) for x, y in zip(a, other))
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, plain))  # same windows and NIR, only the RGB changes
    assert not any(np.allclose(x[0], y[0]) for x, y in zip(a, plain))
