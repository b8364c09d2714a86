"""``predict_raster``'s outputs: a COG class raster with colour table and categories on the input grid, and a
preview drawn from the engine's thumbnails without reading the class raster or the input again."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

torch = pytest.importorskip("torch")


class _Threshold(torch.nn.Module):
    """Two classes from band 1: a fixed 1x1 convolution, so the expected classes are known exactly."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] * 10], dim=1)


def _payload():
    return {"window": 64, "overlap": 16, "arch": {"classes": 2}, "class_names": ["background", "bright"],
            "bands": [1, 2, 3], "band_count": 3, "mean": [100.0, 100.0, 100.0], "std": [50.0, 50.0, 50.0]}


def test_class_raster_and_preview_without_a_second_read(raster_factory, tmp_path, monkeypatch):
    from geotool.io.raster import RasterSource
    from geotool.segmentation.predict import PredictConfig, predict_raster

    data = np.random.default_rng(0).integers(1, 255, (3, 300, 410)).astype(np.uint8)
    data[:, :8, :8] = 0
    path = raster_factory("scene.tif", data, crs="EPSG:4326", transform=Affine(0.0001, 0, 12.5, 0, -0.0001, 45.2), nodata=0)
    opened = []
    real_init = RasterSource.__init__

    def spy(self, paths, *args, **kwargs):
        opened.append(str(paths))
        real_init(self, paths, *args, **kwargs)

    monkeypatch.setattr(RasterSource, "__init__", spy)
    cfg = PredictConfig(model="unused.ckpt", rasters=[str(path)], output=str(tmp_path / "out"), preview=True)
    (tmp_path / "out").mkdir()
    res = predict_raster(_Threshold().eval(), _payload(), str(path), tmp_path / "out", cfg, "cpu")
    assert opened == [str(path)]  # the scene once, for the engine; nothing for the preview
    assert (tmp_path / "out" / "scene_preview.png").stat().st_size > 0 and res["preview"].endswith("scene_preview.png")
    with rasterio.open(res["classes"]) as ds, rasterio.open(path) as src:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.overviews(1)
        assert ds.nodata == 255 and ds.colormap(1)[1] != ds.colormap(1)[0]
        cls = ds.read(1)
    expected = np.where(data[0] > 100, 1, 0)  # softmax of (0, 10 * z-score): class 1 where band 1 > mean
    expected[:8, :8] = 255
    assert np.array_equal(cls, expected)
    assert (tmp_path / "out" / "scene_classes.tif.aux.xml").read_text().count("<Category>") == 2


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here: the pinned path runs only on one"))])
def test_host_device_copy_round_trips_and_owns_its_results(device):
    from geotool.models.transfer import HostDeviceCopy

    copy = HostDeviceCopy(device)
    assert copy.pinned == (device == "cuda")
    a = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    first = copy.to_host(copy.to_device(a) * 2)
    second = copy.to_host(copy.to_device(a + 1) * 2)  # reuses the buffers: the first result must not change
    assert np.array_equal(first, a * 2) and np.array_equal(second, (a + 1) * 2)
    assert np.array_equal(copy.to_host(copy.to_device(a[:, :1].copy())), a[:, :1])  # another shape: a new buffer


def test_preview_is_the_scene_beside_its_classes_in_the_raster_colours(tmp_path):
    from matplotlib import image

    from geotool.io.raster import default_class_colormap
    from geotool.segmentation.predict import _preview

    rgb = np.zeros((3, 20, 30), np.float32)
    rgb[:, :, 15:] = 100  # dark left half, bright right half
    classes = np.zeros((1, 20, 30), np.uint8)
    classes[0, 10:, :] = 1
    classes[0, :2, :2] = 255
    valid = classes[0] != 255
    out = _preview({"input": rgb, "classes": classes, "valid": valid}, default_class_colormap(2, 255), tmp_path / "p.png", "s.tif")
    png = image.imread(out)[..., :3]
    from PIL import Image

    with Image.open(out) as img:
        assert img.mode == "RGB" and img.text["Title"] == "s.tif: image | prediction"
    gap = png.shape[1] - 60
    left, right = png[:, :30], png[:, 30 + gap :]
    assert png.shape[0] == 20 and gap >= 2
    assert (left[:2, :2] == 0).all() and (left[5, 20] == 1).all() and (left[5, 5] == 0).all()
    assert np.allclose(right[:10], left[:10])  # background: the image itself
    red = np.asarray(default_class_colormap(2)[1][:3]) / 255
    assert np.allclose(right[15, 5], 0.5 * red, atol=1 / 255) and np.allclose(right[15, 20], 0.5 + 0.5 * red, atol=1 / 255)
