"""geotool.io.raster: stacks, alignment checks, band selection, nodata masks, atomic writing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from geotool.errors import BandError, CRSError, InputFileError, RasterMismatchError
from geotool.io.raster import Grid, RasterSource, RasterWriter, read_grid, read_stack, write_raster

UTM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5100000.0)


def test_stack_of_single_and_multi_band_files(raster_factory):
    a = raster_factory("a.tif", np.full((5, 7), 1, np.float32), descriptions=["dem"])
    b = raster_factory("b.tif", np.stack([np.full((5, 7), 2, np.float32), np.full((5, 7), 3, np.float32)]),
                       descriptions=["red", "nir"])
    stack = read_stack([a, b])
    assert stack.data.shape == (3, 5, 7)
    with RasterSource([a, b], bands=[3]) as src:
        assert src.count == 1 and src.total_band_count == 3
    assert stack.band_names == ["dem", "red", "nir"]
    assert [stack.data[i, 0, 0] for i in range(3)] == [1, 2, 3]
    assert stack.valid.all()
    assert stack.grid.crs.to_epsg() == 32633 and stack.grid.transform == UTM


def test_folder_of_rasters_is_read_in_name_order(tmp_path, raster_factory):
    folder = tmp_path / "layers"
    folder.mkdir()
    for name, value in (("b.tif", 2), ("a.tif", 1)):
        raster_factory(f"layers/{name}", np.full((4, 4), value, np.int16))
    (folder / "notes.txt").write_text("not a raster")
    stack = read_stack([folder])
    assert stack.data[:, 0, 0].tolist() == [1, 2]


def test_band_selection_by_index_and_description(raster_factory):
    data = np.stack([np.full((3, 3), v, np.uint8) for v in (10, 20, 30, 40)])
    path = raster_factory("rgbn.tif", data, descriptions=["red", "green", "blue", "nir"])
    assert read_stack(path, bands=[4, 1]).data[:, 0, 0].tolist() == [40, 10]
    assert read_stack(path, bands=["nir", "green"]).data[:, 0, 0].tolist() == [40, 20]
    with pytest.raises(BandError, match="band 5 is out of range.*use 1..4"):
        read_stack(path, bands=[5])
    with pytest.raises(BandError, match="no band described 'swir'.*red, green, blue, nir"):
        read_stack(path, bands=["swir"])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"crs": "EPSG:32634"}, "CRS EPSG:32634 instead of EPSG:32633"),
        ({"transform": Affine(10.0, 0.0, 500020.0, 0.0, -10.0, 5100000.0)}, "origin"),
        ({"transform": Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 5100000.0)}, "pixel size 20x20 instead of 10x10"),
    ],
)
def test_misaligned_layer_names_the_file_and_the_difference(raster_factory, kwargs, expected):
    a = raster_factory("a.tif", np.zeros((6, 6), np.float32))
    b = raster_factory("b.tif", np.zeros((6, 6), np.float32), **kwargs)
    with pytest.raises(RasterMismatchError) as info:
        read_stack([a, b])
    message = str(info.value)
    assert "b.tif" in message and expected in message and "--resample" in message


def test_size_mismatch_is_reported(raster_factory):
    a = raster_factory("a.tif", np.zeros((6, 6), np.float32))
    b = raster_factory("b.tif", np.zeros((6, 8), np.float32))
    with pytest.raises(RasterMismatchError, match="size 8x6 instead of 6x6"):
        read_stack([a, b])


def test_resample_opt_in_puts_layer_on_first_grid(raster_factory):
    a = raster_factory("a.tif", np.zeros((6, 6), np.float32))
    # 0.6 pixel east: nearest resampling takes each cell from the neighbour to the west
    coarse = np.arange(36, dtype=np.float32).reshape(6, 6)
    b = raster_factory("b.tif", coarse, transform=Affine(10.0, 0.0, 500006.0, 0.0, -10.0, 5100000.0))
    stack = read_stack([a, b], resample="nearest")
    assert stack.data.shape == (2, 6, 6)
    assert np.array_equal(stack.data[1, :, 1:], coarse[:, :5])
    assert not stack.valid[:, 0].any() and stack.valid[:, 1:].all()


def test_nodata_from_file_and_from_override(raster_factory):
    data = np.array([[1, -99999, 3], [4, 5, 6]], np.float32)
    path = raster_factory("dem.tif", data, nodata=-99999)
    stack = read_stack(path)
    assert stack.valid.tolist() == [[True, False, True], [True, True, True]]
    override = read_stack(path, nodata=5)
    assert override.valid.tolist() == [[True, True, True], [True, False, True]]


def test_nan_is_invalid_in_float_rasters(raster_factory):
    data = np.array([[1, np.nan], [3, 4]], np.float32)
    assert read_stack(raster_factory("f.tif", data)).valid.tolist() == [[True, False], [True, True]]


def test_nodata_in_any_band_invalidates_the_pixel(raster_factory):
    a = raster_factory("a.tif", np.array([[1, 0], [1, 1]], np.uint8), nodata=0)
    b = raster_factory("b.tif", np.array([[1, 1], [0, 1]], np.uint8), nodata=0)
    assert read_stack([a, b]).valid.tolist() == [[True, False], [False, True]]


def test_alpha_band_is_not_a_default_band_but_masks(tmp_path):
    path = tmp_path / "rgba.tif"
    data = np.full((4, 3, 3), 100, np.uint8)
    data[3, 0, 0] = 0
    with rasterio.open(path, "w", driver="GTiff", width=3, height=3, count=4, dtype="uint8",
                       crs="EPSG:3857", transform=UTM, photometric="RGB", alpha="YES") as ds:
        ds.write(data)
    with RasterSource(path) as src:
        assert src.count == 3 and src.total_band_count == 4  # the alpha band is numbered, not selected
        _, valid = src.read()
    assert not valid[0, 0] and valid.sum() == 8


def test_boundless_window_pads_with_invalid(raster_factory):
    path = raster_factory("a.tif", np.ones((4, 4), np.uint8))
    with RasterSource(path) as src:
        data, valid = src.read(Window(-2, -1, 4, 4))
    assert data.shape == (1, 4, 4)
    assert valid.sum() == 2 * 3 and valid[1:, 2:].all() and not valid[0].any()
    assert (data[0][~valid] == 0).all()


def test_missing_and_non_raster_files_are_clean_errors(tmp_path):
    with pytest.raises(InputFileError, match="nope.tif: no such raster"):
        read_stack(tmp_path / "nope.tif")
    text = tmp_path / "fake.tif"
    text.write_text("hello")
    with pytest.raises(InputFileError, match="fake.tif is not a readable raster"):
        read_stack(text)


def test_raster_without_crs_is_refused(raster_factory):
    path = raster_factory("nocrs.tif", np.zeros((3, 3), np.uint8), crs=None)
    with pytest.raises(CRSError, match="nocrs.tif has no CRS"):
        read_stack(path)


def test_write_raster_keeps_georeference_and_is_tiled_compressed(tmp_path):
    grid = Grid(rasterio.crs.CRS.from_epsg(4326), Affine(0.001, 0, 10, 0, -0.001, 50), 300, 260)
    data = np.arange(300 * 260, dtype=np.float32).reshape(260, 300)
    out = write_raster(tmp_path / "sub" / "out.tif", data, grid, nodata=-1, band_names=["value"])
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.transform == grid.transform
        assert ds.nodata == -1 and ds.descriptions == ("value",)
        assert ds.profile["tiled"] and ds.compression.name.lower() == "deflate"
        assert np.array_equal(ds.read(1), data)
    assert read_grid(out).same_as(grid)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.tif"]


def test_failed_write_leaves_nothing(tmp_path):
    grid = Grid(rasterio.crs.CRS.from_epsg(32633), UTM, 8, 8)
    with pytest.raises(RuntimeError):
        with RasterWriter(tmp_path / "out.tif", grid, 1, "uint8") as writer:
            writer.write(np.zeros((4, 8), np.uint8), Window(0, 0, 8, 4))
            raise RuntimeError("model crashed half way")
    assert list(tmp_path.iterdir()) == []


def test_grid_xy_and_rowcol_round_trip():
    grid = Grid(rasterio.crs.CRS.from_epsg(32633), UTM, 50, 40)
    rows, cols = np.array([0, 5, 39]), np.array([0, 17, 49])
    x, y = grid.xy(rows, cols)
    assert x[0] == 500005.0 and y[0] == 5099995.0
    r, c = grid.rowcol(x, y)
    assert r.tolist() == rows.tolist() and c.tolist() == cols.tolist()


def test_check_sources_refuses_the_first_bad_input_with_its_name(raster_factory):
    from geotool.errors import BandError, ConfigError
    from geotool.io.raster import check_sources

    good = raster_factory("good.tif", np.ones((3, 8, 9), np.uint8))
    thin = raster_factory("thin.tif", np.ones((1, 8, 9), np.uint8))
    seen = []
    check_sources([good], [1, 2, 3], check=lambda src, path: seen.append((path, src.count)))
    assert seen == [(str(good), 3)]
    with pytest.raises(BandError, match=r"thin\.tif does not fit the model"):
        check_sources([good, thin], [1, 2, 3], band_context="does not fit the model")

    def refuse(src, path):
        raise ConfigError(f"{path} refused")

    with pytest.raises(ConfigError, match=r"good\.tif refused"):
        check_sources([good, thin], None, check=refuse)
