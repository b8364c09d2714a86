"""Synthetic paired RGB/NIR scenes for the NIR tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from geotool.io.raster import Grid, write_raster

GRID_ORIGIN = (500000.0, 4000000.0)


def context_scene(path: Path, size: int = 128, seed: int = 0, nodata_corner: int = 0) -> Path:
    """uint8 RGBN GeoTIFF where NIR depends on spatial context only.

    "Forest" rectangles carry a pixel checkerboard (RGB 51/102 alternating) and NIR 153; "field" is flat
    RGB 77 (the checkerboard's mean) with NIR 51. Per pixel, RGB 51 and 102 are both forest while 77
    (in between) is field, so no per-pixel linear model separates them; a 3x3 neighbourhood does.
    Optional nodata (0 in every band) in the top-left ``nodata_corner`` x ``nodata_corner`` pixels.
    """
    rng = np.random.default_rng(seed)
    forest = np.zeros((size, size), bool)
    for _ in range(size * size // 900):
        r, c = rng.integers(0, size - 8, 2)
        h, w = rng.integers(6, 24, 2)
        forest[r : r + h, c : c + w] = True
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2).astype(bool)
    rgb = np.where(forest, np.where(checker, 102, 51), 77).astype(np.uint8)
    nir = np.where(forest, 153, 51).astype(np.uint8)
    data = np.stack([rgb, rgb, rgb, nir])
    if nodata_corner:
        data[:, :nodata_corner, :nodata_corner] = 0
    grid = Grid(CRS.from_epsg(32633), Affine(2.0, 0, GRID_ORIGIN[0], 0, -2.0, GRID_ORIGIN[1]), size, size)
    write_raster(path, data, grid, nodata=0, band_names=["red", "green", "blue", "nir"])
    return path


TINY = ["--window", "32", "--depth", "3", "--no-dropout", "--ngf", "8", "--ndf", "8", "--batch-size", "8", "--accelerator", "cpu"]


def write_nir_checkpoint(path: Path) -> Path:
    """A train-nir model.ckpt with a small random pix2pix generator (uint8 RGB in, uint8 NIR out)."""
    import torch

    from geotool.io.checkpoint import save_checkpoint
    from geotool.models.pix2pix import build_generator
    from geotool.nir.checkpoint import FORMAT, VERSION

    arch = {"generator": "pix2pix", "in_channels": 3, "ngf": 4, "depth": 3, "dropout": False, "norm": "instance"}
    torch.manual_seed(0)
    net = build_generator(arch)
    unit = {"kind": "uint8", "dtype": "uint8"}
    save_checkpoint(path, {"format": FORMAT, "version": VERSION, "arch": arch, "window": 32, "rgb_bands": [1, 2, 3],
                           "nir_band": 4, "rgb_scaling": {**unit, "offset": [0.0] * 3, "scale": [255.0] * 3},
                           "nir_scaling": {**unit, "offset": [0.0], "scale": [255.0]}, "nir_nodata": None,
                           "state_dict": net.state_dict()})
    return path
