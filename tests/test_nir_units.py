"""Scaling, metrics, baselines and networks of the NIR module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geotool.errors import ConfigError
from geotool.models.pix2pix import PatchDiscriminator, UNetGenerator
from geotool.nir.baselines import GBBaseline, LinearBaseline
from geotool.nir.metrics import SSIMSums, halo_rows, nir_metrics, seam_mask, ssim
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


def test_seam_mask_rows_are_rows_of_the_scene_mask():
    whole = seam_mask((90, 70), window=32, overlap=8, offset=4, width=2)
    for start, stop in ((0, 7), (20, 33), (85, 90)):
        assert np.array_equal(seam_mask((90, 70), 32, 8, 4, 2, rows=(start, stop)), whole[start:stop])


def _holes(shape, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1, (2, *shape))
    valid = rng.uniform(size=shape) > 0.02
    valid[10:14, 5:30] = False
    valid[:, :2] = False
    return x, np.clip(x + rng.normal(0, 0.1, shape), 0, 1), valid


def _streamed_ssim(x, y, valid, rows):
    acc = SSIMSums()
    height = x.shape[0]
    for row_off in range(0, height, rows):
        start, stop, keep = halo_rows(row_off, min(rows, height - row_off), height)
        acc.add(x[start:stop], y[start:stop], valid[start:stop], keep)
    return acc


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 6, 7, 11, 64, 200])
def test_streamed_ssim_equals_whole_array_ssim(rows):
    x, y, valid = _holes((61, 37), seed=rows)
    assert _streamed_ssim(x, y, valid, rows).result() == pytest.approx(ssim(x, y, valid), rel=1e-12, abs=1e-14)


def test_ssim_without_a_fully_valid_window_averages_valid_pixels():
    x, y, valid = _holes((5, 40), seed=0)  # fewer rows than the window: no window is fully valid
    acc = _streamed_ssim(x, y, valid, 1)
    assert acc.full_n == 0 and acc.result() == pytest.approx(ssim(x, y, valid), rel=1e-12)


def test_metric_sums_match_direct_formulas():
    rng = np.random.default_rng(2)
    real = rng.uniform(0.1, 0.7, (30, 30))
    fake = np.clip(real + rng.normal(0.02, 0.08, real.shape), 0, 1)
    rgb = rng.uniform(0.05, 0.4, (3, 30, 30))
    valid = rng.uniform(size=real.shape) > 0.1
    m = nir_metrics(fake, real, rgb, valid)
    f, r, v = fake[valid], real[valid], np.vstack([rgb[:, valid], real[valid][None]])
    w = np.vstack([rgb[:, valid], f[None]])
    angle = np.degrees(np.arccos(np.clip((v * w).sum(0) / np.linalg.norm(v, axis=0) / np.linalg.norm(w, axis=0), -1, 1)))
    assert m["pearson_r"] == pytest.approx(np.corrcoef(f, r)[0, 1], rel=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((f - r) ** 2)), rel=1e-12)
    assert m["sam_deg"] == pytest.approx(angle.mean(), rel=1e-9)
    assert np.isnan(nir_metrics(np.full_like(real, 0.3), real, rgb, valid)["pearson_r"])


def test_linear_baseline_recovers_linear_relation():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (3, 500))
    nir = 0.5 * rgb[0] - 0.2 * rgb[1] + 0.1 * rgb[2] + 0.3
    pred = LinearBaseline().fit(rgb, nir).predict(rgb)
    assert np.abs(pred - nir).max() < 1e-5


def test_baselines_fitted_in_chunks():
    rng = np.random.default_rng(3)
    rgb = rng.uniform(0, 1, (3, 3000)).astype(np.float32)
    rgb[1] = rgb[0]  # collinear bands: lstsq's minimum-norm solution
    nir = (0.6 * rgb[0] + 0.1 * rgb[2] ** 2 + rng.normal(0, 0.05, 3000)).astype(np.float32)
    chunked = LinearBaseline()
    for part in np.array_split(np.arange(3000), 7):
        chunked.add(rgb[:, part], nir[part])
    x = np.vstack([rgb, np.ones(3000)]).T.astype(np.float64)
    np.testing.assert_allclose(chunked.finish().coef, np.linalg.lstsq(x, nir.astype(np.float64), rcond=None)[0], rtol=1e-9)
    gbs = [GBBaseline(seed=4, max_iter=5, max_samples=500) for _ in range(2)]
    for part in np.array_split(np.arange(3000), 9):
        gbs[0].add(rgb[:, part], nir[part])
    gbs[1].add(rgb, nir)
    assert [g.finish()._keys.size for g in gbs] == [500, 500]
    assert np.array_equal(gbs[0]._nir, gbs[1]._nir)  # the same seeded sample however the pixels are chunked
    assert np.array_equal(gbs[0].predict(rgb), gbs[1].predict(rgb))


@pytest.mark.parametrize("depth, size", [(3, 32), (5, 64)])
def test_networks_shapes(depth, size):
    g = UNetGenerator(3, 1, ngf=4, depth=depth)
    d = PatchDiscriminator(4, ndf=4, n_layers=3)
    x = torch.rand(2, 3, size, size)
    y = g(x)
    assert y.shape == (2, 1, size, size) and y.abs().max() <= 1
    assert d(x, y).shape[0] == 2


def test_nodata_is_filled_with_each_windows_valid_mean():
    from geotool.nir.data import PairedScene, fill_invalid, training_windows, validation_windows

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0.1, 0.9, (2, 3, 8, 8)).astype(np.float32)
    valid = np.ones((2, 8, 8), bool)
    valid[0, :3] = False
    valid[1] = False
    filled = fill_invalid(rgb, valid)
    assert filled.dtype == np.float32 and np.array_equal(filled[0][:, valid[0]], rgb[0][:, valid[0]])
    assert np.allclose(filled[0][:, ~valid[0]], rgb[0][:, 3:].mean(axis=(1, 2))[:, None])
    assert (filled[1] == 0).all()  # nothing valid: nothing to average
    assert np.array_equal(fill_invalid(rgb[0], valid[0]), filled[0])  # one window or a batch
    # Training and validation windows carry the fill, as generate-nir's windows do.
    scene_valid = np.ones((16, 40), bool)
    scene_valid[:, :6] = False
    scene = PairedScene("s", np.where(scene_valid, 0.5, 0).astype(np.float32)[None].repeat(3, 0),
                        np.zeros((16, 40), np.float32), scene_valid, 24)
    windows = [training_windows([scene], 16, 8, seed=0)[i][0] for i in range(8)] + [w[0] for w in validation_windows([scene], 16)]
    assert all(np.allclose(w, 0.5) for w in windows)


def test_instance_norm_generator_normalises_each_window_alone():
    from geotool.models.pix2pix import build_generator

    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    arch = {"generator": "pix2pix", "in_channels": 3, "ngf": 4, "depth": 3, "dropout": False}
    inst = build_generator({**arch, "norm": "instance"}).train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inst.modules())
    with torch.no_grad():
        assert torch.allclose(inst(x)[1:2], inst(x[1:2]), atol=1e-6)  # batch mates do not matter, even in training
        batch = build_generator(arch).train()  # checkpoints without "norm" keep batch normalisation
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.modules())
        assert not torch.allclose(batch(x)[1:2], batch(x[1:2]), atol=1e-3)
    with pytest.raises(ValueError, match="unknown norm"):
        UNetGenerator(3, 1, ngf=4, depth=3, norm="group")


def test_ema_update_warms_up_then_holds_its_decay():
    from geotool.nir.module import _ema_update

    update = _ema_update(0.99)
    avg, cur = [torch.zeros(3)], [torch.ones(3)]
    update(avg, cur, torch.tensor(0))  # decay 1/10: the first average is mostly the current weights
    assert torch.allclose(avg[0], torch.full((3,), 0.9))
    avg = [torch.zeros(3)]
    update(avg, cur, torch.tensor(10_000))  # warm-up (10001/10010 > 0.99) no longer binds
    assert torch.allclose(avg[0], torch.full((3,), 0.01))
    counter = [torch.tensor(3)]
    update(counter, [torch.tensor(7)], torch.tensor(5))  # integer buffers follow the live model
    assert int(counter[0]) == 7


@pytest.mark.parametrize("window", [24, 32, 128])
def test_max_patch_layers_is_the_deepest_discriminator_that_runs(window):
    from geotool.models.pix2pix import max_patch_layers

    n = max_patch_layers(window)
    x, y = torch.zeros(2, 3, window, window), torch.zeros(2, 1, window, window)
    assert PatchDiscriminator(4, 8, n)(x, y).shape[-1] >= 1
    with pytest.raises(RuntimeError):
        PatchDiscriminator(4, 8, n + 1)(x, y)
