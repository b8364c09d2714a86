"""Scaling, metrics, baselines and networks of the NIR module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geotool.errors import ConfigError
from geotool.models.pix2pix import PatchDiscriminator, UNetGenerator
from geotool.nir.baselines import LinearBaseline
from geotool.nir.metrics import nir_metrics, seam_mask
from geotool.nir.scaling import Scaling, fit_scaling


def test_scaling_round_trip_and_clipping():
    s = fit_scaling("uint8", np.array([[0, 255]]), "uint8")
    assert s.to_unit(np.array([[51]])) == pytest.approx(0.2)
    out = s.to_dtype(np.array([[-0.5, 0.2, 1.7]]), reserve=0)
    assert out.dtype == np.uint8 and out.tolist() == [[1, 51, 255]]
    r = fit_scaling("auto", np.array([[100, 4000]]), "uint16")
    assert r.kind == "reflectance10000" and r.to_dtype(np.array([[0.1234]])).tolist() == [[1234]]
    p = fit_scaling("percentile", np.arange(101, dtype=float)[None], "float32", (0, 100))
    assert p.to_unit(np.array([[50.0]]))[0, 0] == pytest.approx(0.5)
    assert Scaling.from_dict(p.as_dict()) == p
    with pytest.raises(ConfigError):
        fit_scaling("uint8", np.array([[0, 4000]]), "uint16")


def test_metrics_perfect_and_known_values():
    rng = np.random.default_rng(0)
    real = rng.uniform(0.2, 0.6, (40, 40)).astype(np.float32)
    rgb = rng.uniform(0.05, 0.3, (3, 40, 40)).astype(np.float32)
    valid = np.ones((40, 40), bool)
    valid[:5] = False
    m = nir_metrics(real, real, rgb, valid)
    assert m["mae"] == 0 and m["ssim"] == pytest.approx(1.0) and m["ndvi_iou"] == 1.0 and m["sam_deg"] < 1e-3
    m = nir_metrics(real + 0.1, real, rgb, valid)
    assert m["mae"] == pytest.approx(0.1, abs=1e-6) and m["bias"] == pytest.approx(0.1, abs=1e-6)
    assert m["psnr_db"] == pytest.approx(20.0, abs=1e-3) and m["pearson_r"] == pytest.approx(1.0)
    assert m["n_pixels"] == 35 * 40


def test_seam_mask_marks_interior_borders_only():
    mask = seam_mask((100, 100), window=32, overlap=8, width=1)
    assert not mask[0, 0] and not mask[99, 99]  # scene edges are never "seams"
    assert mask[:, 24].all() and mask[24, :].all() and not mask[50, 50]


def test_linear_baseline_recovers_linear_relation():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (3, 500))
    nir = 0.5 * rgb[0] - 0.2 * rgb[1] + 0.1 * rgb[2] + 0.3
    pred = LinearBaseline().fit(rgb, nir).predict(rgb)
    assert np.abs(pred - nir).max() < 1e-5


@pytest.mark.parametrize("depth, size", [(3, 32), (5, 64)])
def test_networks_shapes(depth, size):
    g = UNetGenerator(3, 1, ngf=4, depth=depth)
    d = PatchDiscriminator(4, ndf=4, n_layers=3)
    x = torch.rand(2, 3, size, size)
    y = g(x)
    assert y.shape == (2, 1, size, size) and y.abs().max() <= 1
    assert d(x, y).shape[0] == 2
