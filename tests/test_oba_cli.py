"""`geotool oba-augment` end to end: outputs, georeference, polygons vs mask, reproducibility, clean errors."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.windows import Window
from typer.testing import CliRunner

from geotool.cli.main import app
from geotool.io.files import read_json, read_table
from geotool.io.raster import RasterSource
from geotool.io.vector import rasterize, read_vector
from tests.oba_helpers import BOXES, CLASSES, box_labels, make_scene, write_labels

runner = CliRunner()


@pytest.fixture()
def scene(tmp_path):
    path, grid = make_scene(tmp_path)
    # labels in WGS84 with class names: reprojected to the scene and mapped to ids
    gdf = box_labels(grid, BOXES, ["roof" if c == 1 else "tank" for c in CLASSES], crs=CRS.from_epsg(4326))
    labels = write_labels(gdf, tmp_path / "labels.gpkg")
    return path, grid, labels


def _run(args):
    return runner.invoke(app, ["--quiet", "oba-augment", *map(str, args)])


BASE = ["--class-attribute", "cls", "--scene-size", "64", "-n", "3", "--min-gap", "2", "--seed", "7"]


def test_outputs_georeference_polygons_and_reproducibility(scene, tmp_path):
    path, grid, labels = scene
    out = tmp_path / "out"
    res = _run(["--images", path, "--labels", labels, "--output", out, *BASE, "--blend", "hard"])
    assert res.exit_code == 0, res.output
    manifest = read_table(out / "manifest.csv")
    assert len(manifest) > 0
    assert set(manifest["class_id"]) <= {1, 2}
    assert read_json(out / "manifest.json")["class_ids"] == {"roof": 1, "tank": 2}
    assert (out / "contact_sheet.png").stat().st_size > 1000
    assert (out / "geotool.json").exists()
    with RasterSource(path) as bg:
        full, _ = bg.read()
    for k in range(3):
        stem = f"scene_{k:04d}"
        rows = manifest[manifest["scene"] == stem]
        with RasterSource(out / f"{stem}.tif") as img, RasterSource(out / f"{stem}_mask.tif") as msk:
            data, valid = img.read()
            mask, _ = msk.read()
            assert img.count == 3 and img.dtypes == ["uint16"] * 3 and img.nodata == [0.0] * 3
            assert msk.dtypes == ["uint8"]
            if len(rows):
                col, row = int(rows["window_col"].iloc[0]), int(rows["window_row"].iloc[0])
                expected = grid.window_grid(Window(col, row, 64, 64))
                assert img.grid.same_as(expected) and msk.grid.same_as(expected)
                # background pixels outside pasted objects are the source window's pixels
                src = full[:, row:row + 64, col:col + 64]
                outside = mask[0] == 0
                np.testing.assert_array_equal(data[:, outside], src[:, outside])
        polys = read_vector(out / f"{stem}_objects.gpkg", target=img.grid, require_overlap=False)
        assert len(polys) == len(rows)
        for cls in (1, 2):
            burnt = rasterize(polys[polys["class_id"] == cls], img.grid).astype(bool)
            truth = mask[0] == cls
            if truth.any() or burnt.any():
                iou = (burnt & truth).sum() / (burnt | truth).sum()
                assert iou >= 0.95
    again = tmp_path / "again"
    res = _run(["--images", path, "--labels", labels, "--output", again, *BASE, "--blend", "hard"])
    assert res.exit_code == 0, res.output
    assert (out / "manifest.csv").read_bytes() == (again / "manifest.csv").read_bytes()
    for k in range(3):
        for suffix in (".tif", "_mask.tif"):
            with RasterSource(out / f"scene_{k:04d}{suffix}") as a, RasterSource(again / f"scene_{k:04d}{suffix}") as b:
                np.testing.assert_array_equal(a.read()[0], b.read()[0])
    other = tmp_path / "other"
    assert _run(["--images", path, "--labels", labels, "--output", other, *BASE[:-1], "8"]).exit_code == 0
    assert (out / "manifest.csv").read_bytes() != (other / "manifest.csv").read_bytes()


def test_separate_backgrounds_of_another_pixel_size(scene, tmp_path):
    path, grid, labels = scene
    bg, bg_grid = make_scene(tmp_path, "bg.tif", size=(80, 80), res=0.5, origin=(600000.0, 5100000.0), seed=4, nodata_cols=0)
    out = tmp_path / "out"
    args = ["--images", path, "--labels", labels, "--backgrounds", bg, "--output", out, *BASE, "--config", tmp_path / "c.yaml"]
    (tmp_path / "c.yaml").write_text("mine_backgrounds: false\nscale_range: [1.0, 1.0]\nrot90: false\n")
    res = _run(args)
    assert res.exit_code == 0, res.output
    manifest = read_table(out / "manifest.csv")
    assert (manifest["background"] == str(bg)).all()
    assert np.allclose(manifest["zoom"], 2.0)
    with RasterSource(out / "scene_0000.tif") as img:
        assert img.grid.res == (0.5, 0.5)
        assert bg_grid.bounds[0] <= img.grid.bounds[0] and img.grid.bounds[2] <= bg_grid.bounds[2]


def test_bad_inputs_fail_cleanly_without_output(scene, tmp_path):
    path, grid, labels = scene
    out = tmp_path / "out"
    far = box_labels(grid, [(0, 0, 5, 5)])
    far["geometry"] = far.geometry.translate(1e5, 1e5)
    far_path = write_labels(far, tmp_path / "far.gpkg")
    res = _run(["--images", path, "--labels", far_path, "--output", out, "-n", "2"])
    assert res.exit_code == 2 and "does not overlap" in res.output
    assert not out.exists()
    # labels everywhere: no label-free background
    dense = box_labels(grid, [(r, c, 6, 6) for r in range(0, 160, 20) for c in range(0, 200, 20)])
    dense_path = write_labels(dense, tmp_path / "dense.gpkg")
    res = _run(["--images", path, "--labels", dense_path, "--output", out, "-n", "2", "--scene-size", "64",
                "--max-label-fraction", "0"])
    assert res.exit_code == 2 and "no background window" in res.output and "at most 0% labelled" in res.output
    assert not out.exists()
    # by default the same dense scene composes on windows with a few labelled pixels, and says so
    relaxed = tmp_path / "relaxed"
    res = _run(["--images", path, "--labels", dense_path, "--output", relaxed, "-n", "2", "--scene-size", "64"])
    assert res.exit_code == 0, res.output
    assert "no label-free 64-px background window" in res.output and "--max-label-fraction 0" in res.output
    assert len(list(relaxed.glob("*.tif"))) == 4  # two scenes, each an image and a mask
    # band mismatch between scenes and backgrounds
    bg, _ = make_scene(tmp_path, "bg4.tif", bands=4, size=(80, 80), seed=2)
    res = _run(["--images", path, "--labels", labels, "--backgrounds", bg, "--output", out, "-n", "2"])
    assert res.exit_code == 2 and "band" in res.output
    assert not out.exists()
    res = _run(["--images", path, "--labels", labels, "--output", out, "--class-attribute", "nope"])
    assert res.exit_code == 2 and "nope" in res.output
    res = _run(["--images", path, "--labels", labels, "--output", out, "--blend", "soft"])
    assert res.exit_code == 2 and "blend" in res.output
    assert not out.exists()


def test_real_buildings_sample_with_shadows(tmp_path):
    out = tmp_path / "sn7"
    res = _run([
        "--images", "data_samples/buildings/SN7_mosaic_clipped.tif", "--labels", "data_samples/buildings/SN7_buildings.geojson",
        "--bands", "1,2,3", "--scene-size", "128", "-n", "2", "--shadows", "--output", out,
    ])
    assert res.exit_code == 0, res.output
    manifest = read_table(out / "manifest.csv")
    assert len(manifest) >= 6 and (manifest["shadow_length_px"] > 0).all()
    with RasterSource(out / "scene_0000.tif") as img:
        assert img.dtypes == ["int16"] * 3 and img.grid.crs.to_epsg() == 3857


def test_class_mask_raster_as_labels_and_ignore_ring(tmp_path):
    path, grid = make_scene(tmp_path)
    from geotool.io.raster import write_raster

    mask = np.zeros(grid.shape, np.uint8)
    for (r, c, h, w), cls in zip(BOXES, CLASSES):
        mask[r:r + h, c:c + w] = cls
    mask_path = write_raster(tmp_path / "mask.tif", mask, grid)
    out = tmp_path / "out"
    res = _run(["--images", path, "--labels", mask_path, "--output", out, "--scene-size", "64", "-n", "2", "--ignore-ring", "1", "--blend", "hard"])
    assert res.exit_code == 0, res.output
    manifest = read_table(out / "manifest.csv")
    assert set(manifest["class_id"]) <= {1, 2} and len(manifest) > 0
    with RasterSource(out / "scene_0000_mask.tif") as msk:
        m = msk.read()[0][0]
    objects = (m == 1) | (m == 2)
    ring = m == 255
    assert ring.any()
    from scipy import ndimage

    # every object pixel next to the background lies in the ring: objects are enclosed by ignore pixels
    edge = objects & ndimage.binary_dilation(m == 0)
    assert not edge.any()


def test_height_attribute_drives_shadow_length_and_object_count_flags(tmp_path):
    path, grid = make_scene(tmp_path)
    gdf = box_labels(grid, BOXES, CLASSES)
    gdf["h"] = [4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    labels = write_labels(gdf, tmp_path / "labels.geojson")
    (tmp_path / "c.yaml").write_text("shadows:\n  enabled: true\n  sun_elevation: 45\n  height_attribute: h\nscale_range: [1, 1]\n")
    out = tmp_path / "out"
    res = _run(["--images", path, "--labels", labels, "--output", out, "--config", tmp_path / "c.yaml",
                "--scene-size", "64", "-n", "3", "--min-objects", "2", "--max-objects", "2"])
    assert res.exit_code == 0, res.output
    manifest = read_table(out / "manifest.csv")
    assert manifest.groupby("scene").size().max() <= 2 and len(manifest) >= 4
    expected = gdf["h"].to_numpy()[manifest["object_id"].to_numpy()]
    np.testing.assert_allclose(manifest["shadow_height_m"], expected)
    np.testing.assert_allclose(manifest["shadow_length_px"], expected, rtol=1e-3)  # tan(45) = 1, 1 m pixels


def test_geographic_scene_with_shadows_is_refused(tmp_path):
    from affine import Affine

    from geotool.io.raster import Grid, write_raster

    grid = Grid(CRS.from_epsg(4326), Affine(1e-5, 0, 10.0, 0, -1e-5, 50.0), 120, 120)
    data = np.random.default_rng(0).integers(1, 255, size=(3, 120, 120)).astype(np.uint8)
    path = write_raster(tmp_path / "geo.tif", data, grid)
    labels = write_labels(box_labels(grid, BOXES), tmp_path / "l.gpkg")
    out = tmp_path / "out"
    res = _run(["--images", path, "--labels", labels, "--output", out, "--scene-size", "48", "--shadows"])
    assert res.exit_code == 2 and "metres" in res.output and not out.exists()
    res = _run(["--images", path, "--labels", labels, "--output", out, "--scene-size", "48", "-n", "1"])
    assert res.exit_code == 0, res.output


def test_reruns_replace_the_folder_and_skip_existing_keeps_only_this_runs_scenes(scene, tmp_path):
    path, grid, labels = scene
    out = tmp_path / "out"
    args = ["--images", path, "--labels", labels, "--output", out, *BASE[:-4], "--min-gap", "2"]
    assert _run([*args, "-n", "3", "--seed", "7"]).exit_code == 0
    first = {p.name: p.read_bytes() for p in out.glob("scene_*.tif")}
    res = _run([*args, "-n", "2", "--seed", "7"])  # fewer scenes into the same folder: no stale third scene
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("scene_*")) == sorted(
        f"scene_000{k}{suffix}" for k in range(2) for suffix in (".tif", "_mask.tif", "_objects.gpkg", ".json"))
    assert set(read_table(out / "manifest.csv")["scene"]) <= {"scene_0000", "scene_0001"}
    assert {p.name: p.read_bytes() for p in out.glob("scene_*.tif")} == {k: v for k, v in first.items() if "0002" not in k}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("scene_*")}
    res = runner.invoke(app, ["oba-augment", *map(str, args), "-n", "3", "--seed", "7", "--skip-existing"])
    assert res.exit_code == 0 and res.output.count("(outputs exist)") == 0  # skipped scenes are not echoed
    assert "1 of 3 scenes done, 2 skipped" in res.output
    assert {k: v for k, v in ((p.name, p.stat().st_mtime_ns) for p in out.glob("scene_*")) if k in mtimes} == mtimes
    assert {p.name: p.read_bytes() for p in out.glob("scene_*.tif")} == first  # the same files as one run of 3
    assert len(read_table(out / "manifest.csv")) == len(read_json(out / "manifest.json")["objects"]) > 0
    res = runner.invoke(app, ["oba-augment", *map(str, args), "-n", "3", "--seed", "8", "--skip-existing"])
    assert res.exit_code == 0 and "3 of 3 scenes done, 0 skipped" in res.output  # another seed's scenes are redone
