"""evaluate-nir streams strips of rows: the same numbers as the whole-array metrics on a scene many strips tall."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.raster import Grid, write_raster
from geotool.nir import evaluate
from geotool.nir.metrics import nir_metrics, seam_mask

runner = CliRunner()
SHAPE = (157, 48)  # 23 strips of 7 rows


def _run(args):
    return runner.invoke(app, ["-q", *[str(a) for a in args]])


@pytest.fixture()
def scene(tmp_path):
    """Reference RGBN and a noisy generated NIR (uint8, nodata 0 with holes), tagged with its tiling."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(20, 120, (3, *SHAPE))
    nir = np.clip(1.2 * rgb[0] + 0.5 * rgb[2] + rng.integers(-20, 20, SHAPE), 1, 255)
    ref = np.concatenate([rgb, nir[None]]).astype(np.uint8)
    ref[:, :9, :5] = 0
    gen = np.clip(nir + rng.integers(-25, 25, SHAPE), 1, 255).astype(np.uint8)[None]
    gen[:, 60:64, 20:40] = 0
    grid = Grid(CRS.from_epsg(32633), Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0), SHAPE[1], SHAPE[0])
    write_raster(tmp_path / "ref.tif", ref, grid, nodata=0)
    tags = {"geotool_nir_window": "32", "geotool_nir_overlap": "8", "geotool_nir_offset": "0"}
    write_raster(tmp_path / "gen.tif", gen, grid, nodata=0, tags=tags)
    unit = lambda a: a.astype(np.float32) / np.float32(255)  # noqa: E731 - Scaling("uint8").to_unit
    return tmp_path, unit(ref), unit(gen[0]), (ref > 0).all(0) & (gen[0] > 0)


@pytest.mark.parametrize("region", ["all", "east"])
def test_streamed_metrics_equal_whole_array_metrics(scene, monkeypatch, region):
    base, ref, fake, valid = scene
    monkeypatch.setattr(evaluate, "METRIC_STRIP_ROWS", 7)
    out = base / f"m_{region}.json"
    res = _run(["evaluate-nir", base / "gen.tif", base / "ref.tif", "--output", out, "--region", region,
                "--nir-band", 4, "--baseline", "linear", "--plot", base / "p.png"])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    region_valid = evaluate._region(valid, region, 0.3)
    west = evaluate._region((ref > 0).all(0), "west", 0.3)
    x = np.vstack([ref[:3, west], np.ones(west.sum())]).T.astype(np.float64)
    coef = np.linalg.lstsq(x, ref[3, west].astype(np.float64), rcond=None)[0]
    linear = (np.moveaxis(ref[:3], 0, -1) @ coef[:3] + coef[3]).astype(np.float32)
    expected = {"model": nir_metrics(fake, ref[3], ref[:3], region_valid),
                "linear": nir_metrics(linear, ref[3], ref[:3], region_valid)}
    for name, metrics in expected.items():
        assert got[name].keys() - {"fitted_on"} == metrics.keys()
        for key, value in metrics.items():
            assert got[name][key] == pytest.approx(value, rel=1e-9), (name, key)
    border = seam_mask(SHAPE, 32, 8, 0, 2) & region_valid
    err = np.abs(fake - ref[3])
    assert got["seam_check"]["border_mae"] == pytest.approx(err[border].mean(), rel=1e-6)
    assert got["seam_check"]["interior_mae"] == pytest.approx(err[region_valid & ~border].mean(), rel=1e-6)
    assert (base / "p.png").is_file()


def test_errors_leave_no_output(scene, tmp_path):
    base, *_ = scene
    out = base / "m.json"
    res = _run(["evaluate-nir", base / "gen.tif", base / "ref.tif", "--output", out, "--nir-band", 4,
                "--region", "west", "--val-fraction", 1.0])
    assert res.exit_code == 2 and "no pixel is valid" in res.output and not out.exists(), res.output
    other = tmp_path / "other.tif"
    write_raster(other, np.ones((1, 10, 10), np.uint8), Grid(CRS.from_epsg(32633), Affine(1.0, 0, 100.0, 0, -1.0, 100.0), 10, 10))
    res = _run(["evaluate-nir", other, base / "ref.tif", "--output", out, "--nir-band", 4])
    assert res.exit_code == 2 and "not on the grid" in res.output and not out.exists(), res.output
