"""Outputs are Cloud-Optimized GeoTIFFs: GDAL's COG layout, internal overviews, the input's georeference and
nodata; class rasters carry a colour table and category names; the same inputs give the same bytes; a
failure leaves nothing behind."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from geotool.io.raster import RasterSource, RasterWriter, read_grid, write_raster


def _grid(raster_factory, shape=(700, 900), crs="EPSG:32633", transform=None):
    transform = transform or Affine(10.0, 0, 500000.0, 0, -10.0, 5100000.0)
    return read_grid(raster_factory("in.tif", np.zeros((1, *shape), np.uint8), crs=crs, transform=transform))


def _assert_cog(path):
    """What GDAL's COG validator checks first: the layout marker ahead of the first directory, tiles,
    overviews inside the file (no .ovr), the layout GDAL reports."""
    head = path.read_bytes()[:512]
    assert b"GDAL_STRUCTURAL_METADATA_SIZE" in head and b"LAYOUT=IFDS_BEFORE_DATA" in head
    assert not path.with_name(path.name + ".ovr").exists()
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.compression.name.lower() == "deflate"
        return [ds.overviews(b) for b in ds.indexes]


@pytest.mark.parametrize("crs,transform", [
    ("EPSG:32633", Affine(10.0, 0, 500000.0, 0, -10.0, 5100000.0)),
    ("EPSG:4326", Affine(0.0001, 0, 12.5, 0, -0.0001, 45.2)),
])
def test_float_output_is_a_cog_with_overviews_and_the_input_georeference(raster_factory, tmp_path, crs, transform):
    grid = _grid(raster_factory, (700, 900), crs, transform)
    data = np.random.default_rng(0).random((2, 700, 900)).astype(np.float32)
    data[:, :300, :300] = -1  # nodata: the overview of this corner must stay nodata, not be averaged in
    out = write_raster(tmp_path / "probs.tif", data, grid, nodata=-1, band_names=["p0", "p1"])
    overviews = _assert_cog(out)
    assert overviews == [[2, 4], [2, 4]]
    with rasterio.open(out) as ds, rasterio.open(tmp_path / "in.tif") as src:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
        assert ds.nodata == -1 and ds.descriptions == ("p0", "p1")
        assert ds.read().tobytes() == data.tobytes()
        ov = ds.read(1, out_shape=(350, 450))  # GDAL reads the 2x overview
        assert (ov[:150, :150] == -1).all() and np.isclose(ov[200:, 200:].mean(), data[0, 400:, 400:].mean(), atol=0.01)


def test_class_raster_has_colour_table_categories_and_nearest_overviews(raster_factory, tmp_path):
    from geotool.io.gdal_settings import _libgdal

    grid = _grid(raster_factory)
    classes = (np.arange(700 * 900).reshape(700, 900) // 997 % 3).astype(np.uint8)
    classes[:20] = 255
    names = ["background", "building", "road"]
    out = write_raster(tmp_path / "classes.tif", classes, grid, nodata=255, band_names=["class"], categories=names)
    assert _assert_cog(out) == [[2, 4]]
    with rasterio.open(out) as ds:
        cmap = ds.colormap(1)
        assert cmap[255][3] == 0 and len({cmap[i] for i in range(3)}) == 3
        assert set(np.unique(ds.read(1, out_shape=(175, 225)))) <= {0, 1, 2, 255}  # nearest: no blended classes
        assert ds.read(1).tobytes() == classes.tobytes()
    lib = _libgdal()
    if lib is None:
        pytest.skip("libgdal is not visible to ctypes on this platform")
    lib.GDALAllRegister()
    lib.GDALOpen.restype, lib.GDALOpen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    lib.GDALGetRasterBand.restype, lib.GDALGetRasterBand.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]
    lib.GDALGetRasterColorTable.restype, lib.GDALGetRasterColorTable.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.GDALGetRasterCategoryNames.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.GDALGetRasterCategoryNames.argtypes = [ctypes.c_void_p]
    lib.GDALGetDefaultRAT.restype, lib.GDALGetDefaultRAT.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    lib.GDALRATGetRowCount.argtypes = [ctypes.c_void_p]
    lib.GDALRATGetValueAsString.restype = ctypes.c_char_p
    lib.GDALRATGetValueAsString.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.GDALClose.argtypes = [ctypes.c_void_p]
    handle = lib.GDALOpen(str(out).encode(), 0)
    try:
        band = lib.GDALGetRasterBand(handle, 1)
        assert lib.GDALGetRasterColorTable(band)  # also makes GDAL's GeoTIFF driver load the .aux.xml, as QGIS does
        got, cats = [], lib.GDALGetRasterCategoryNames(band)
        while cats and cats[len(got)]:
            got.append(cats[len(got)].decode())
        assert got == names
        rat = lib.GDALGetDefaultRAT(band)
        assert rat and lib.GDALRATGetRowCount(rat) == 3
        assert [lib.GDALRATGetValueAsString(rat, i, 1).decode() for i in range(3)] == names
    finally:
        lib.GDALClose(handle)


def test_same_input_same_bytes_and_a_stale_sidecar_is_removed(raster_factory, tmp_path):
    grid = _grid(raster_factory, (300, 520))
    data = np.random.default_rng(1).random((1, 300, 520)).astype(np.float32)
    a = write_raster(tmp_path / "a.tif", data, grid, nodata=-1, tags={"k": "v"})
    b = write_raster(tmp_path / "b.tif", data, grid, nodata=-1, tags={"k": "v"})
    assert a.read_bytes() == b.read_bytes()
    stale = tmp_path / "a.tif.aux.xml"
    stale.write_text("<PAMDataset><Metadata><MDI key='old'>1</MDI></Metadata></PAMDataset>")
    write_raster(a, data, grid, nodata=-1)
    assert not stale.exists()


def test_small_rasters_are_cogs_too(raster_factory, tmp_path):
    grid = _grid(raster_factory, (5, 6))
    data = np.arange(30, dtype=np.int16).reshape(5, 6)
    out = write_raster(tmp_path / "tiny.tif", data, grid, nodata=-9999)
    assert _assert_cog(out) == [[]]
    with rasterio.open(out) as ds:
        assert ds.read(1).tobytes() == data.tobytes() and ds.nodata == -9999


def test_a_failed_write_leaves_no_file_and_no_sidecar(raster_factory, tmp_path):
    grid = _grid(raster_factory, (300, 300))
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with RasterWriter(out_dir / "c.tif", grid, 1, "uint8", 255, categories=["a", "b"]) as w:
            w.write(np.zeros((256, 300), np.uint8), Window(0, 0, 300, 256))
            raise RuntimeError("model failed")
    assert list(out_dir.iterdir()) == []


def test_a_failed_cog_copy_leaves_no_file(raster_factory, tmp_path, monkeypatch):
    import rasterio.shutil

    grid = _grid(raster_factory, (300, 300))
    out_dir = tmp_path / "out"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(rasterio.shutil, "copy", broken)
    with pytest.raises(OSError, match="disk full"):
        write_raster(out_dir / "c.tif", np.zeros((300, 300), np.uint8), grid, categories=["a", "b"])
    assert list(out_dir.iterdir()) == []


def test_engine_outputs_are_cogs_on_the_input_grid(raster_factory, tmp_path):
    from geotool.io.raster import open_writers
    from geotool.io.tiling import TilingSpec, run_tiled

    data = np.random.default_rng(2).integers(1, 255, (3, 600, 530)).astype(np.uint8)
    path = raster_factory("scene.tif", data, crs="EPSG:2953", nodata=0)
    with RasterSource(path) as src:
        writers = {"c": RasterWriter(tmp_path / "c.tif", src.grid, 1, "uint8", 255, categories=["dark", "bright"])}

        def finalize(blended, raw, valid):
            cls = (blended[0] > 127.5).astype(np.uint8)
            cls[~valid] = 255
            return {"c": cls}

        with open_writers(writers) as opened:
            run_tiled(src, lambda b, v: b[:, :1], 1, finalize, opened, TilingSpec(window=128, overlap=32))
    assert _assert_cog(tmp_path / "c.tif")[0][:1] == [2]
    with rasterio.open(tmp_path / "c.tif") as ds, rasterio.open(path) as src:
        assert ds.crs == src.crs and ds.transform == src.transform
        assert np.array_equal(ds.read(1), np.where(data[0] > 127.5, 1, 0).astype(np.uint8))


def test_compression_threads_follow_gdal_num_threads_else_the_affinity_mask(monkeypatch):
    import os

    from geotool.io.gdal_settings import compression_threads

    monkeypatch.setenv("GDAL_NUM_THREADS", "3")
    assert compression_threads() == 3
    monkeypatch.setenv("GDAL_NUM_THREADS", "ALL_CPUS")  # not a number: the CPUs this process may use
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert compression_threads() == expected


@pytest.mark.parametrize("kind", ["classes", "probs"])
def test_own_overviews_give_the_bytes_of_gdals_cog_driver_building_them(raster_factory, tmp_path, kind):
    """The writer builds the overviews itself on the stream file (FORCE_USE_EXISTING): the COG must hold what
    GDAL's COG driver writes when it makes them (OVERVIEWS=AUTO) from the same pixels and metadata: the same
    pixels, the same overview levels and resampling. The one difference: the driver sizes each level by halving
    the one above rounding down (700 -> 350 -> 175 -> 87), BuildOverviews rounds the factor's division up (88),
    so the coarsest of three levels here is one pixel larger and sampled from other pixels."""
    from rasterio.shutil import copy as gdal_copy

    from geotool.io.raster import _cog_options

    grid = _grid(raster_factory, (700, 1100))
    rng = np.random.default_rng(4)
    if kind == "classes":
        data = (rng.random((1, 700, 1100)) * 3).astype(np.uint8)
        data[:, :40] = 255
        kwargs = dict(nodata=255, categories=["a", "b", "c"], band_names=["class"])
        resampling = "NEAREST"
    else:
        data = rng.random((2, 700, 1100)).astype(np.float32)
        data[:, 100:400, 200:500] = -1
        kwargs = dict(nodata=-1, band_names=["p0", "p1"])
        resampling = "AVERAGE"
    ours = write_raster(tmp_path / "ours.tif", data, grid, **kwargs)
    plain = write_raster(tmp_path / "plain.tif", data, grid, cog=False, **kwargs)
    gdal_copy(plain, tmp_path / "gdal.tif", driver="COG", **_cog_options(data.dtype, resampling, overviews="AUTO"))
    assert _assert_cog(ours)[0] == [2, 4, 8]
    with rasterio.open(ours) as a, rasterio.open(tmp_path / "gdal.tif") as b:
        assert a.profile == b.profile and a.tags() == b.tags() and a.descriptions == b.descriptions
        assert a.read().tobytes() == data.tobytes() == b.read().tobytes()
        if kind == "classes":
            assert a.colormap(1) == b.colormap(1)
    for level, equal in ((0, True), (1, True), (2, False)):
        with rasterio.open(ours, overview_level=level) as a, rasterio.open(tmp_path / "gdal.tif", overview_level=level) as b:
            if equal:
                assert a.read().tobytes() == b.read().tobytes()
            else:
                assert (a.height, a.width) == (88, 138) and (b.height, b.width) == (87, 137)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") or "stream" in p.name) == []


def test_outputs_made_together_are_the_bytes_of_outputs_made_alone(raster_factory, tmp_path):
    from geotool.io.raster import open_writers

    grid = _grid(raster_factory, (600, 700))
    rng = np.random.default_rng(5)
    classes = (rng.random((1, 600, 700)) * 2).astype(np.uint8)
    probs = rng.random((2, 600, 700)).astype(np.float32)
    writers = {"c": RasterWriter(tmp_path / "c.tif", grid, 1, "uint8", 255, categories=["a", "b"]),
               "p": RasterWriter(tmp_path / "p.tif", grid, 2, "float32", -1)}
    with open_writers(writers) as opened:
        opened["c"].write(classes)
        opened["p"].write(probs)
    alone_c = write_raster(tmp_path / "alone" / "c.tif", classes, grid, nodata=255, categories=["a", "b"])
    alone_p = write_raster(tmp_path / "alone" / "p.tif", probs, grid, nodata=-1)
    assert (tmp_path / "c.tif").read_bytes() == alone_c.read_bytes()
    assert (tmp_path / "p.tif").read_bytes() == alone_p.read_bytes()
    assert (tmp_path / "c.tif.aux.xml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "c.tif", "c.tif.aux.xml", "in.tif", "p.tif"]


def test_one_failed_cog_copy_among_several_leaves_none_of_them(raster_factory, tmp_path, monkeypatch):
    import rasterio.shutil

    from geotool.io.raster import open_writers

    grid = _grid(raster_factory, (300, 300))
    out_dir = tmp_path / "out"
    real_copy = rasterio.shutil.copy

    def copy_failing_for_probs(src, dst, *args, **kwargs):
        if "probs" in str(dst):
            raise OSError("disk full")
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(rasterio.shutil, "copy", copy_failing_for_probs)
    writers = {"c": RasterWriter(out_dir / "classes.tif", grid, 1, "uint8", 255, categories=["a", "b"]),
               "p": RasterWriter(out_dir / "probs.tif", grid, 2, "float32", -1)}
    with pytest.raises(OSError, match="disk full"):
        with open_writers(writers) as opened:
            opened["c"].write(np.zeros((300, 300), np.uint8))
            opened["p"].write(np.zeros((2, 300, 300), np.float32))
    assert list(out_dir.iterdir()) == []


def test_a_stream_too_large_to_keep_raw_is_zstd_and_gives_the_same_cog(raster_factory, tmp_path, monkeypatch):
    from geotool.io import raster

    grid = _grid(raster_factory, (600, 700))
    data = np.random.default_rng(6).random((2, 600, 700)).astype(np.float32)
    data[:, :100, :100] = -1
    raw = write_raster(tmp_path / "raw.tif", data, grid, nodata=-1)
    seen = []
    real = raster._stream_options

    def spy(*args):
        opts = real(*args)
        seen.append(opts["compress"])
        return opts

    monkeypatch.setattr(raster, "STREAM_RAW_MAX_BYTES", 0)
    monkeypatch.setattr(raster, "_stream_options", spy)
    zstd = write_raster(tmp_path / "zstd.tif", data, grid, nodata=-1)
    assert seen == ["zstd"]
    assert _assert_cog(zstd) == [[2, 4], [2, 4]]
    assert zstd.read_bytes() == raw.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "raw.tif", "zstd.tif"]
