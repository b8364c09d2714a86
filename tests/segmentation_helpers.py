"""Fixtures for the segmentation tests: small georeferenced scenes with square 'buildings'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geotool.io.raster import Grid, write_raster

UTM = CRS.from_epsg(32633)

# A light Unet (a 0.4 M-parameter encoder, 3 stages, few decoder channels) for tests about plumbing: steps and
# checkpoints are small (smp keeps every resnet18 stage, 11 M parameters, whatever the depth).
LIGHT_ENCODER = "timm-mobilenetv3_small_minimal_100"
LIGHT_OPTIONS = {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}
#: The same as a train-segmentation ``--config`` YAML (JSON is YAML).
LIGHT_YAML = f"encoder: {LIGHT_ENCODER}\nmodel_options: {json.dumps(LIGHT_OPTIONS)}\n"


def make_scene(path: Path, height: int = 150, width: int = 97, bands: int = 3, seed: int = 0, nodata_corner: bool = True,
               origin=(500000.0, 5000000.0), res: float = 2.0):
    """A uint16 scene on UTM 33N with bright squares (class 1) on a textured background.

    Returns (grid, mask (H, W) uint8 of squares, path). The top-left 10x10 pixels are nodata (0).
    """
    rng = np.random.default_rng(seed)
    grid = Grid(UTM, from_origin(origin[0], origin[1], res, res), width, height)
    mask = np.zeros((height, width), np.uint8)
    for r in range(8, height - 12, 24):
        for c in range(6, width - 12, 22):
            mask[r : r + 10, c : c + 9] = 1
    img = 1000 + rng.normal(0, 30, (bands, height, width)) + mask[None].astype(np.float64) * 600 * np.arange(1, bands + 1)[:, None, None]
    img = np.clip(img, 1, 60000).astype(np.uint16)
    if nodata_corner:
        img[:, :10, :10] = 0
    write_raster(path, img, grid, nodata=0)
    return grid, mask, path


def mask_polygons(mask: np.ndarray, grid: Grid, crs="EPSG:4326"):
    """The squares of ``mask`` as polygons, reprojected to ``crs`` (default geographic)."""
    import geopandas as gpd
    from rasterio import features
    from shapely.geometry import shape

    geoms = [shape(g) for g, v in features.shapes(mask.astype(np.uint8), mask=mask > 0, transform=grid.transform)]
    return gpd.GeoDataFrame({"kind": ["Building"] * len(geoms)}, geometry=geoms, crs=grid.crs).to_crs(crs)


def labelled_scene(folder: Path) -> tuple[Path, Path, Path]:
    """``folder/scene.tif`` (:func:`make_scene`) and its squares as ``folder/labels.geojson`` (EPSG:4326):
    returns (folder, scene, labels)."""
    from geotool.io.vector import write_vector

    grid, mask, img = make_scene(folder / "scene.tif")
    write_vector(mask_polygons(mask, grid), folder / "labels.geojson")
    return folder, img, folder / "labels.geojson"


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    """A segmentation model.ckpt with random weights (no training: these tests are about plumbing)."""
    import torch

    from geotool.io.checkpoint import save_checkpoint
    from geotool.segmentation.checkpoint import FORMAT, VERSION
    from geotool.segmentation.model import build_model

    arch = {"arch": "Unet", "encoder": "resnet18", "in_channels": 3, "classes": 2,
            "options": {"encoder_depth": 3, "decoder_channels": [16, 8, 4]}}
    torch.manual_seed(seed)
    net = build_model(arch["arch"], arch["encoder"], 3, 2, options=arch["options"])
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "arch": arch, "bands": [1, 2, 3], "band_count": 3,
                           "mean": [1000.0] * 3, "std": [300.0] * 3, "class_names": ["background", "building"],
                           "window": 64, "overlap": 16, "nodata_output": 255, "input_nodata": None,
                           "state_dict": net.state_dict()})
    return path
