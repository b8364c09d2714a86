"""train-nir -> generate-nir -> evaluate-nir on tiny synthetic scenes (CPU, seconds): a 90-step model shared by
the tests of generation, and the checks of train-nir's inputs. Short runs about what training exports are in
test_nir_training.py (a file of their own, so that pytest-xdist can run them beside this one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from typer.testing import CliRunner

from geotool.cli.main import app
from nir_helpers import TINY, context_scene

runner = CliRunner()
# The fixture's 90-step run. Constant lr: 90 steps are too few to spend half of them decaying; the seam bounds
# below are measured on these models.
CONTEXT_RUN = [*TINY, "--max-steps", 90, "--steps-per-epoch", 45, "--lr", 0.001, "--lr-schedule", "constant",
               "--threads", 1, "--seed", 3]


def _run(args):
    return runner.invoke(app, ["-q", *[str(a) for a in args]])


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    """The 128 x 128 context scene (12 x 12 nodata corner) the fixture's model trains on: for tests that need
    only the scene, not the model."""
    return context_scene(tmp_path_factory.mktemp("nir_scene") / "scene.tif", size=128, seed=0, nodata_corner=12)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, scene):
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("nir")
    run = base / "run"
    # Batch normalisation: this scene's field windows are perfectly flat, which leaves instance normalisation (the
    # default, covered by test_instance_norm_generator_end_to_end) nothing to normalise for far longer than 90 steps.
    # SSIM weight 30, the default before 50: a heavier SSIM term places the absolute NIR level more slowly, and in
    # 90 steps the forest stays too dark for any NDVI > 0.3 (bias -0.085 vs -0.061).
    res = _run(["train-nir", scene, "--output", run, *CONTEXT_RUN, "--norm", "batch", "--ssim-weight", 30])
    assert res.exit_code == 0, res.output
    return base, scene, run


def test_train_writes_run_folder(trained):
    _, _, run = trained
    assert (run / "model.ckpt").is_file()
    assert (run / "metrics.csv").read_text().count("\n") >= 3
    assert sorted(p.name for p in (run / "previews").glob("*.png")) == ["epoch_000.png", "epoch_001.png"]
    assert (run / "training_curves.png").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    side = json.loads((run / "geotool.json").read_text())
    assert side["config"]["l1_weight"] == 100.0 and side["seed"] == 3
    assert side["results"]["steps"] == 90  # generator steps, though Lightning counts both optimisers


def test_generate_georeferenced_units_nodata_and_beats_linear(trained):
    base, scene, run = trained
    out = base / "gen" / "nir.tif"
    res = _run(["generate-nir", run / "model.ckpt", scene, "--output", out, "--threads", 1])
    assert res.exit_code == 0, res.output
    with rasterio.open(scene) as ref, rasterio.open(out) as gen:
        assert gen.crs == ref.crs and gen.transform == ref.transform and gen.shape == ref.shape
        assert gen.dtypes == ("uint8",) and gen.nodata == 0
        nir = gen.read(1)
    assert (nir[:12, :12] == 0).all()  # nodata where the input had nodata
    assert (nir[12:, 12:] > 0).all()  # valid pixels never collide with nodata
    metrics = base / "m.json"
    res = _run(["evaluate-nir", out, scene, "--output", metrics, "--baseline", "linear"])
    assert res.exit_code == 0, res.output
    m = json.loads(metrics.read_text())
    # NIR depends on texture only: the per-pixel linear model cannot fit it; the tiny U-Net can.
    assert m["model"]["mae"] < 0.8 * m["linear"]["mae"], m
    assert m["model"]["ndvi_f1"] > m["linear"]["ndvi_f1"]
    assert "seam_check" in m and m["notes"]["ssim"].startswith("uniform 7x7")


def test_instance_norm_generator_end_to_end(tmp_path):
    torch.set_num_threads(1)
    scene = context_scene(tmp_path / "scene.tif", size=128, seed=0, nodata_corner=12)
    run = tmp_path / "run"
    res = _run(["train-nir", scene, "--output", run, *CONTEXT_RUN])
    assert res.exit_code == 0, res.output
    assert torch.load(run / "model.ckpt", weights_only=False)["arch"]["norm"] == "instance"  # the default
    diff, err = _two_lattices(run / "model.ckpt", scene, tmp_path)
    # Each window normalises itself, yet two tilings agree far more closely than the model agrees with the truth.
    assert diff < 0.3 * err, (diff, err)  # measured 0.05
    metrics = tmp_path / "m.json"
    res = _run(["evaluate-nir", tmp_path / "off0.tif", scene, "--output", metrics, "--baseline", "linear"])
    m = json.loads(metrics.read_text())
    assert m["model"]["mae"] < 0.8 * m["linear"]["mae"], m  # measured 0.68


def _two_lattices(model: Path, scene: Path, folder: Path) -> tuple[float, float]:
    """Generate with 32-px windows on lattices offset by 0 and 8 px (``folder/off0.tif``, ``off8.tif``) ->
    (mean |difference| between the two, mean |error| of the first), 16 px away from the edges. The shift is
    a multiple of 2**depth (8 here): stride-2 U-Nets are shift-equivariant only for those."""
    outs = []
    for offset in (0, 8):
        out = folder / f"off{offset}.tif"
        res = _run(["generate-nir", model, scene, "--output", out, "--window", 32, "--overlap", 16,
                    "--offset", offset, "--threads", 1])
        assert res.exit_code == 0, res.output
        with rasterio.open(out) as ds:
            outs.append(ds.read(1).astype(float)[16:-16, 16:-16])
    with rasterio.open(scene) as ds:
        real = ds.read(4).astype(float)[16:-16, 16:-16]
    return float(np.abs(outs[0] - outs[1]).mean()), float(np.abs(outs[0] - real).mean())


def test_two_window_offsets_agree_away_from_edges(trained):
    base, scene, run = trained
    diff, err = _two_lattices(run / "model.ckpt", scene, base)
    # Blended tilings on different lattices agree far more closely than the model agrees with the truth.
    assert diff < 0.3 * err, (diff, err)  # measured 0.25 for this 90-step model


def test_stack_and_ndvi(trained):
    base, scene, run = trained
    out_dir2 = base / "stack"
    res = _run(["generate-nir", run / "model.ckpt", scene, "--output", out_dir2, "--stack", "--ndvi", "--threads", 1])
    assert res.exit_code == 0, res.output
    with rasterio.open(out_dir2 / "scene_rgbn.tif") as ds, rasterio.open(scene) as ref:
        assert ds.count == 4 and ds.dtypes[0] == "uint8"
        assert np.array_equal(ds.read([1, 2, 3]), ref.read([1, 2, 3]))
        # the generated NIR is a band, not transparency: GIS tools and geotool's own reader keep it
        assert [c.name for c in ds.colorinterp] == ["red", "green", "blue", "undefined"]
    from geotool.io.raster import RasterSource

    with RasterSource(out_dir2 / "scene_rgbn.tif") as src:
        assert src.count == 4 and src.band_names[-1] == "nir_generated"
    with rasterio.open(out_dir2 / "scene_rgbn_ndvi.tif") as nd:
        v = nd.read(1)
        assert nd.dtypes == ("float32",) and (v[:12, :12] == nd.nodata).all()
        assert -1 <= v[12:, 12:].min() and v[12:, 12:].max() <= 1


def _no_outputs(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir()) if path.suffix == "" else not path.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rgb-bands", "1,2"], "three bands"),
        (["--nir-band", "9"], "out of range"),
        (["--window", "30"], "multiple of 8"),
        (["--d-layers", "4"], "does not fit 32-px windows"),
    ],
)
def test_train_bad_inputs(scene, tmp_path, args, message):
    out = tmp_path / "run"
    res = _run(["train-nir", scene, "--output", out, *TINY, "--max-steps", 2, *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not out.exists()


def test_mismatched_nir_raster_grid(scene, tmp_path):
    other = context_scene(tmp_path / "other.tif", size=96)
    out = tmp_path / "run"
    res = _run(["train-nir", scene, "--nir-raster", other, "--nir-band", "4", "--output", out, *TINY, "--max-steps", 2])
    assert res.exit_code == 2 and "not on the grid" in res.output, res.output
    assert not out.exists()


def test_generate_bad_inputs(trained, tmp_path):
    base, scene, run = trained
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes((run / "model.ckpt").read_bytes()[:500])
    out = tmp_path / "nir.tif"
    res = _run(["generate-nir", bad, scene, "--output", out])
    assert res.exit_code == 2 and "corrupted" in res.output and not out.exists()
    res = _run(["generate-nir", run / "model.ckpt", scene, "--output", out, "--rgb-bands", "1,2"])
    assert res.exit_code == 2 and "3 RGB band" in res.output and not out.exists()
    res = _run(["generate-nir", run / "model.ckpt", scene, "--output", out, "--rgb-bands", "1,2,7"])
    assert res.exit_code == 2 and "out of range" in res.output and not out.exists()
    float_rgb = tmp_path / "float.tif"
    with rasterio.open(scene) as ds:
        profile = ds.profile | {"dtype": "float32", "nodata": None}
        data = ds.read().astype("float32") / 255
    from geotool.io.raster import read_grid, write_raster

    write_raster(float_rgb, data, read_grid(scene))
    res = _run(["generate-nir", run / "model.ckpt", float_rgb, "--output", out])
    assert res.exit_code == 2 and "uint8" in res.output and not out.exists()
    _ = profile


def test_generate_reports_the_distance_to_the_training_colours(trained, tmp_path):
    from geotool.io.raster import RasterSource, write_raster

    base, scene, run = trained
    payload = torch.load(run / "model.ckpt", weights_only=False)
    assert payload["rgb_domain"]["spread"] >= 0 and len(payload["rgb_domain"]["histogram"]) == 3
    with RasterSource(scene, bands=[1, 2, 3, 4]) as src:
        data, _ = src.read()
        grid = src.grid
    bright = write_raster(tmp_path / "bright.tif", np.clip(data.astype(int) * 2 + 60, 1, 255).astype(np.uint8), grid, nodata=0)
    reports = {}
    for name, path in (("same", scene), ("bright", bright)):
        res = _run(["generate-nir", run / "model.ckpt", path, "--output", tmp_path / f"{name}_nir.tif", "--threads", 1])
        assert res.exit_code == 0, res.output
        reports[name] = json.loads((tmp_path / f"{name}_nir.tif.json").read_text())["results"]["domain"]
        assert ("colours lie" in res.stderr) == (name == "bright")
    assert reports["same"]["distance"] < 0.01 and not reports["same"]["outside"]
    assert reports["bright"]["distance"] > 0.1 and reports["bright"]["outside"]
