"""OBA engine: pixel-exact hard pasting, masks, gaps, jitter confined to objects, shadows, placement rules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import ndimage

from geotool.io.raster import RasterSource
from geotool.oba.bank import ObjectBank, ObjectChip, extract_objects
from geotool.oba.compose import compose_scene
from geotool.oba.config import OBAConfig
from geotool.oba.online import OnlineOBA, ObjectSource, build_online_oba
from geotool.oba.transforms import geometric
from tests.oba_helpers import BOXES, CLASSES, box_labels, make_scene

PLAIN = dict(rot90=False, flip=False, scale_range=(1.0, 1.0), brightness=0.0, contrast=0.0, blend="hard")


def _bank(n=12, rng_seed=1, res=1.0, classes=(1,)):
    rng = np.random.default_rng(rng_seed)
    bank = ObjectBank()
    for i in range(n):
        h, w = int(rng.integers(4, 10)), int(rng.integers(4, 10))
        alpha = np.ones((h, w), bool)
        alpha[0, 0] = alpha[-1, -1] = False  # not a plain rectangle
        image = rng.integers(2000, 3000, size=(3, h, w)).astype(np.uint16)
        bank.add(ObjectChip(image, alpha, classes[i % len(classes)], "synthetic", i, res))
    return bank


def _background(shape=(64, 64), seed=3):
    rng = np.random.default_rng(seed)
    img = rng.integers(100, 900, size=(3, *shape)).astype(np.float32)
    valid = np.ones(shape, bool)
    valid[:, -5:] = False
    return img, valid


@pytest.mark.parametrize("geom", [False, True])
def test_hard_mode_pasted_pixels_equal_transformed_object(geom):
    cfg = OBAConfig(**{**PLAIN, "rot90": geom, "flip": geom, "n_objects": (6, 6)})
    bank = _bank()
    img, valid = _background()
    comp = compose_scene(img, valid, None, bank, np.random.default_rng(0), cfg, 1.0)
    assert comp.placements
    for p in comp.placements:
        obj = bank.objects[p["bank_index"]]
        chip, alpha = obj.image.astype(np.float32), obj.alpha
        chip, alpha = np.rot90(chip, p["rot90"], axes=(1, 2)), np.rot90(alpha, p["rot90"])
        if p["flip"]:
            chip, alpha = chip[:, :, ::-1], alpha[:, ::-1]
        H, W = valid.shape
        r, c = p["row"], p["col"]
        mine = comp.instances == p["instance"]
        for dr in range(alpha.shape[0]):
            for dc in range(alpha.shape[1]):
                rr, cc = r + dr, c + dc
                if 0 <= rr < H and 0 <= cc < W:
                    assert mine[rr, cc] == alpha[dr, dc]
                    if alpha[dr, dc]:
                        np.testing.assert_array_equal(comp.image[:, rr, cc], chip[:, dr, dc])
        assert mine.sum() == p["pixels"]


def test_mask_matches_pasted_objects_and_nodata_untouched():
    cfg = OBAConfig(**{**PLAIN, "n_objects": (8, 8)})
    bank = _bank(classes=(1, 3))
    img, valid = _background()
    comp = compose_scene(img, valid, None, bank, np.random.default_rng(5), cfg, 1.0)
    assert len(comp.placements) >= 3 and {p["class_id"] for p in comp.placements} == {1, 3}
    for p in comp.placements:
        assert (comp.mask[comp.instances == p["instance"]] == p["class_id"]).all()
    assert (comp.mask[(comp.instances == 0) & valid] == 0).all()
    assert (comp.mask[~valid] == 255).all()
    np.testing.assert_array_equal(comp.image[:, ~valid], img[:, ~valid])
    assert not (comp.instances[~valid]).any()


@pytest.mark.parametrize("gap", [0, 1, 3])
def test_no_overlap_and_gap_honoured(gap):
    cfg = OBAConfig(**{**PLAIN, "n_objects": (15, 15), "min_gap": gap, "rot90": True, "max_rotation": 30})
    bank = _bank(20)
    img, valid = _background((80, 80))
    existing = np.zeros(valid.shape, np.int64)
    existing[30:40, 30:40] = 2
    comp = compose_scene(img, valid, existing, bank, np.random.default_rng(7), cfg, 1.0)
    assert len(comp.placements) >= 5
    assert (comp.mask[30:40, 30:40] == 2).all()  # the existing object is kept
    structure = np.ones((2 * gap + 1, 2 * gap + 1), bool)
    others_all = (comp.instances > 0) | (existing > 0)
    for p in comp.placements:
        mine = comp.instances == p["instance"]
        assert mine.sum() == p["pixels"]  # nothing painted over it later
        grown = ndimage.binary_dilation(mine, structure) if gap else mine
        assert not (grown & others_all & ~mine).any()


def test_colour_jitter_never_changes_background_pixels():
    cfg = OBAConfig(n_objects=(10, 10), brightness=0.5, contrast=0.5, blend="gaussian", match="meanstd", max_rotation=45)
    img, valid = _background()
    comp = compose_scene(img, valid, None, _bank(), np.random.default_rng(11), cfg, 1.0)
    assert comp.placements
    outside = comp.instances == 0
    np.testing.assert_array_equal(comp.image[:, outside], img[:, outside])
    assert not np.allclose(comp.image[:, ~outside], img[:, ~outside])


def test_histogram_matching_moves_object_towards_background():
    cfg = OBAConfig(**{**PLAIN, "n_objects": (4, 4), "match": "histogram"})
    img, valid = _background()
    comp = compose_scene(img, valid, None, _bank(), np.random.default_rng(2), cfg, 1.0)
    pasted = comp.image[:, comp.instances > 0]
    assert pasted.max() < 1000  # bank pixels are 2000..3000, the background 100..900


def test_shadows_fall_away_from_the_sun_on_background_only():
    cfg = OBAConfig(**{**PLAIN, "n_objects": (1, 1), "border_clip": False}, shadows={"enabled": True, "sun_azimuth": 180, "sun_elevation": 45, "height_range": (6, 6), "darkening": (0.5, 0.5)})
    img, valid = _background()
    comp = compose_scene(img, valid, None, _bank(), np.random.default_rng(4), cfg, 1.0)
    assert comp.placements[0]["shadow_length_px"] == pytest.approx(6.0)
    changed = (comp.image != img).any(axis=0) & (comp.instances == 0)
    assert changed.any()
    rows_obj = np.nonzero(comp.instances)[0]
    rows_shadow = np.nonzero(changed)[0]
    cols_obj, cols_shadow = np.nonzero(comp.instances)[1], np.nonzero(changed)[1]
    assert rows_shadow.mean() < rows_obj.mean() - 2  # sun in the south: shadows fall north (up)
    assert abs(cols_shadow.mean() - cols_obj.mean()) < 1.0
    np.testing.assert_allclose(comp.image[:, changed], img[:, changed] * 0.5, rtol=1e-6)
    cfg_off = OBAConfig(**{**PLAIN, "n_objects": (1, 1)})
    assert cfg_off.shadows.enabled is False


def test_class_limits_and_balanced_sampling():
    bank = _bank(30, classes=(1, 1, 1, 1, 1, 1, 1, 1, 1, 2))  # class 2 is rare (3 of 30)
    img, valid = _background((96, 96))
    cfg = OBAConfig(**{**PLAIN, "n_objects": (6, 6), "class_limits": {1: 2}})
    comp = compose_scene(img, valid, None, bank, np.random.default_rng(0), cfg, 1.0)
    assert sum(p["class_id"] == 1 for p in comp.placements) <= 2
    cfg = OBAConfig(**{**PLAIN, "n_objects": (4, 4), "class_balanced": True})
    rare = sum(p["class_id"] == 2 for s in range(20) for p in compose_scene(img, valid, None, bank, np.random.default_rng(s), cfg, 1.0).placements)
    assert rare >= 20  # about half of ~80 draws, far above the 10 % share in the bank


def test_resampling_to_output_pixel_size():
    chip = ObjectChip(np.full((3, 6, 6), 5, np.uint16), np.ones((6, 6), bool), 1, "s", 0, res=1.0)
    cfg = OBAConfig(**PLAIN)
    _, alpha, rec = geometric(chip.image.astype(np.float32), chip.alpha, 1.0 / 0.5, np.random.default_rng(0), cfg)
    assert alpha.shape == (12, 12) and rec["zoom"] == 2.0


def test_bank_from_scene_respects_training_region(tmp_path):
    path, grid = make_scene(tmp_path)
    gdf = box_labels(grid, BOXES, CLASSES)
    region = np.zeros(grid.shape, bool)
    region[:, :25] = True  # only objects fully left of column 25
    with RasterSource(path) as src:
        bank = extract_objects(src, gdf, gdf["cls"].to_numpy(), "scene", region=region)
    kept = sorted(o.object_id for o in bank.objects)
    assert kept == [0, 1, 4]
    obj = bank.objects[0]
    assert obj.alpha.shape == (8, 10) and obj.alpha.all()
    with RasterSource(path) as src:
        data, _ = src.read()
    np.testing.assert_array_equal(obj.image, data[:, 5:13, 5:15])


def test_online_hook_is_picklable_respects_probability_and_labels(tmp_path):
    path, grid = make_scene(tmp_path)
    gdf = box_labels(grid, BOXES, CLASSES)
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = grid.transform * (0, 60)
    x1, y1 = grid.transform * (60, 0)
    train = gpd.GeoDataFrame(geometry=[box(x0, y0, x1, y1)], crs=grid.crs)
    hook = build_online_oba([ObjectSource(path, gdf, "cls", region=train)], OBAConfig(probability=1.0, n_objects=(3, 3)))
    assert len(hook.bank) == 6
    hook = pickle.loads(pickle.dumps(hook))
    img, valid = _background()
    mask = np.zeros(valid.shape, np.int64)
    mask[10:20, 10:20] = 2
    mask[~valid] = 255
    out_img, out_mask = hook.sample_transform(img.copy(), mask.copy(), valid, np.random.default_rng(0))
    assert out_img.dtype == np.float32 and out_mask.dtype == np.int64
    assert (out_mask[10:20, 10:20] == 2).all() and (out_mask[~valid] == 255).all()
    assert (out_mask[valid] != mask[valid]).any()
    never = OnlineOBA(hook.bank, OBAConfig(probability=0.0), 1.0)
    a, m = never.sample_transform(img, mask, valid, np.random.default_rng(0))
    assert a is img and m is mask
    again = hook.sample_transform(img.copy(), mask.copy(), valid, np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], out_img)


def test_online_hook_from_files_uses_only_the_training_region(tmp_path):
    from geotool.io.vector import write_vector
    from geotool.oba.online import build_online_oba_from_files

    path, grid = make_scene(tmp_path)
    labels = write_vector(box_labels(grid, BOXES, ["a" if c == 1 else "b" for c in CLASSES]), tmp_path / "l.gpkg")
    region = np.zeros(grid.shape, bool)
    region[:, :25] = True
    hook = build_online_oba_from_files([path], labels, OBAConfig(class_attribute="cls"), regions=[region])
    assert sorted(o.object_id for o in hook.bank.objects) == [0, 1, 4]
    assert {o.class_id for o in hook.bank.objects} == {1}
    assert hook.cfg.probability == 0.6 and hook.res == 1.0


def test_online_probability_is_honoured():
    hook = OnlineOBA(_bank(), OBAConfig(probability=0.6, n_objects=(1, 2)), 1.0)
    img, valid = _background((32, 32))
    mask = np.zeros(valid.shape, np.int64)
    rng = np.random.default_rng(0)
    changed = sum(hook(img, mask, valid, rng)[1] is not mask for _ in range(300))
    assert 150 <= changed <= 210  # 180 expected
