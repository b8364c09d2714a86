"""train-nir's short runs: same seed same model, the smp generator, what is exported (last weights, the EMA
average) and the preset window adapting to a small scene (CPU, seconds).

Validation uses two windows (``val_windows: 2`` in a --config YAML) where these tests do not look at the model's
quality: each epoch draws a preview of its first validation batch (up to 8 windows), a matplotlib figure that
cost more than the training steps."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.raster import read_grid
from nir_helpers import TINY, context_scene

runner = CliRunner()
# Four steps exported from the last one, for tests of what is exported.
SHORT_RUN = [*TINY, "--max-steps", 4, "--steps-per-epoch", 2, "--lr", 0.001, "--seed", 5, "--threads", 1, "--export", "last"]


def _run(args):
    return runner.invoke(app, ["-q", *[str(a) for a in args]])


def _two_val_windows(folder) -> list:
    """``--config`` with ``val_windows: 2`` (a setting without a flag)."""
    path = folder / "two_val_windows.yaml"
    path.write_text("val_windows: 2\n")
    return ["--config", path]


def test_same_seed_same_model(tmp_path):
    torch.set_num_threads(1)
    scene = context_scene(tmp_path / "s.tif", size=112, seed=1)
    states = []
    for name in ("a", "b"):
        res = _run(["train-nir", scene, "--output", tmp_path / name, *TINY, "--max-steps", 3, "--steps-per-epoch", 3,
                    "--seed", 5, "--threads", 1, "--gan-weight", 0, *_two_val_windows(tmp_path)])
        assert res.exit_code == 0, res.output
        states.append(torch.load(tmp_path / name / "model.ckpt", weights_only=False)["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert states[0] and all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_smp_generator_trains_and_generates(tmp_path):
    torch.set_num_threads(1)
    scene = context_scene(tmp_path / "s.tif", size=128, seed=2)
    run = tmp_path / "run"
    res = _run(["train-nir", scene, "--output", run, "--generator", "smp", "--encoder", "resnet18", "--window", "32",
                "--ndf", "8", "--batch-size", "4", "--accelerator", "cpu", "--max-steps", 2, "--steps-per-epoch", 2,
                "--threads", 1, *_two_val_windows(tmp_path)])
    assert res.exit_code == 0, res.output
    assert torch.load(run / "model.ckpt", weights_only=False)["arch"]["generator"] == "smp"
    out = tmp_path / "nir.tif"
    res = _run(["generate-nir", run / "model.ckpt", scene, "--output", out, "--threads", 1])
    assert res.exit_code == 0, res.output
    g, ref = read_grid(out), read_grid(scene)
    assert g.crs == ref.crs and g.transform == ref.transform and g.shape == ref.shape


def test_export_last_and_learning_rate_decay(tmp_path):
    torch.set_num_threads(1)
    scene = context_scene(tmp_path / "s.tif", size=112, seed=1)
    run = tmp_path / "run"
    res = _run(["train-nir", scene, "--output", run, *SHORT_RUN, *_two_val_windows(tmp_path), "--ema", 0])  # the live weights are exported
    assert res.exit_code == 0, res.output
    exported = torch.load(run / "model.ckpt", weights_only=False)["state_dict"]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert exported and all(torch.equal(v, last["state_dict"][f"generator.{k}"]) for k, v in exported.items())
    # Generator and discriminator both follow linear-decay: after all 4 steps the lr sits at its floor, 1/4.
    assert [s["last_epoch"] for s in last["lr_schedulers"]] == [4, 4]
    assert [o["param_groups"][0]["lr"] for o in last["optimizer_states"]] == pytest.approx([0.00025, 0.00025])
    # The reported validation MAE is that of the exported (final) weights, which the last validation also saw.
    summary = torch.load(run / "model.ckpt", weights_only=False)["summary"]
    logged = pd.read_csv(run / "metrics.csv").dropna(subset=["val_mae"])
    assert summary["export"] == "last"
    assert summary["val_mae_unit"] == pytest.approx(float(logged["val_mae"].iloc[-1]), rel=1e-5)


def test_ema_validates_and_exports_the_weight_average(tmp_path):
    torch.set_num_threads(1)
    scene = context_scene(tmp_path / "s.tif", size=112, seed=1)
    run = tmp_path / "run"
    res = _run(["train-nir", scene, "--output", run, *SHORT_RUN, *_two_val_windows(tmp_path), "--ema", 0.5])
    assert res.exit_code == 0, res.output
    exported = torch.load(run / "model.ckpt", weights_only=False)["state_dict"]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert exported and all(torch.equal(v, last[f"generator_ema.module.{k}"]) for k, v in exported.items())
    assert not all(torch.equal(v, last[f"generator.{k}"]) for k, v in exported.items())  # the average, not the live weights
    assert int(last["generator_ema.n_averaged"]) == 4  # updated once per generator step
    summary = torch.load(run / "model.ckpt", weights_only=False)["summary"]
    logged = pd.read_csv(run / "metrics.csv").dropna(subset=["val_mae"])
    assert summary["val_mae_unit"] == pytest.approx(float(logged["val_mae"].iloc[-1]), rel=1e-5)


def test_ema_out_of_range_is_refused(tmp_path):
    scene = context_scene(tmp_path / "s.tif", size=112, seed=1)
    res = _run(["train-nir", scene, "--output", tmp_path / "run", *TINY, "--ema", 1])
    assert res.exit_code == 2 and "--ema" in res.output
    assert not (tmp_path / "run").exists()


def test_preset_window_adapts_to_a_small_scene_with_a_note(tmp_path):
    scene = context_scene(tmp_path / "small.tif", size=128)  # 90 px train / 38 px validation columns
    res = _run(["train-nir", scene, "--output", tmp_path / "run", "--ngf", 8, "--ndf", 8, "--batch-size", 2,
                "--max-steps", 1, "--steps-per-epoch", 1, "--threads", 1, "--accelerator", "cpu"])
    assert res.exit_code == 0, res.output
    assert "too small for 256-px windows" in res.output and "training on 32-px windows (--depth 5" in res.output
    config = json.loads((tmp_path / "run" / "geotool.json").read_text())["config"]
    assert (config["window"], config["depth"]) == (32, 5)
    # a window the user chose is kept, and refused when it cannot fit
    res = _run(["train-nir", scene, "--output", tmp_path / "run2", "--window", 64, "--depth", 3,
                "--max-steps", 1])
    assert res.exit_code == 2 and "too small for 64-px windows" in res.output
    assert not (tmp_path / "run2").exists()
