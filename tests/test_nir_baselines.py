"""evaluate-nir's per-pixel baselines for transfer: fitted on several training scenes (pooled) beside the
oracle fitted on the target itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.raster import RasterSource, write_raster
from geotool.nir.baselines import LinearBaseline
from nir_helpers import context_scene

runner = CliRunner()


def _west_pixels(path, val_fraction=0.3):
    with RasterSource(path, bands=[1, 2, 3, 4]) as src:
        data, valid = src.read(dtype="float32")
    west = np.zeros_like(valid)
    west[:, : int(round(valid.shape[1] * (1 - val_fraction)))] = True
    keep = valid & west
    return data[:3, keep] / 255, data[3, keep] / 255


def test_baselines_fit_on_pooled_training_scenes_and_the_oracle_on_the_target(tmp_path):
    a, b, target = (context_scene(tmp_path / f"{n}.tif", size=48, seed=s) for n, s in (("a", 1), ("b", 2), ("t", 3)))
    with RasterSource(target, bands=[1, 2, 3, 4]) as src:
        data, _ = src.read()
        grid = src.grid
    gen = write_raster(tmp_path / "t_nir.tif", data[3:], grid, nodata=0)  # a perfect generator
    out = tmp_path / "m.json"
    res = runner.invoke(app, ["evaluate-nir", str(gen), str(target), "-o", str(out), "--baseline", "linear",
                              "--baseline-train", str(a), "--baseline-train", str(b)])
    assert res.exit_code == 0, res.output
    m = json.loads(out.read_text())
    assert m["model"]["mae"] == 0 and {"linear", "linear_oracle"} <= set(m)
    assert m["linear"]["fitted_on"].startswith(f"{a}, {b} (west 70%") and m["linear_oracle"]["fitted_on"].startswith(str(target))
    pooled = LinearBaseline()
    for path in (a, b):
        pooled.add(*_west_pixels(path))
    oracle = LinearBaseline().fit(*_west_pixels(target))
    rgb, nir = (x.astype(np.float32) for x in (data[:3] / 255, data[3] / 255))
    valid = data[3] > 0
    for name, model in (("linear", pooled.finish()), ("linear_oracle", oracle)):
        expected = np.abs(model.predict(rgb)[valid] - nir[valid]).mean()
        assert m[name]["mae"] == pytest.approx(expected, rel=1e-4), name
    assert m["linear_oracle"]["mae"] <= m["linear"]["mae"] + 1e-9  # the target's own fit is the better per-pixel model
    res = runner.invoke(app, ["evaluate-nir", str(gen), str(target), "-o", str(out), "--baseline", "linear",
                              "--baseline-train", str(a), "--no-oracle"])
    assert res.exit_code == 0 and "linear_oracle" not in json.loads(out.read_text())
