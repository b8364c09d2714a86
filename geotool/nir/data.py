"""Paired RGB/NIR training data: read, scale, split west/east, random windows with flips/rot90."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from geotool.errors import ConfigError, EmptyDataError
from geotool.io.raster import read_stack
from geotool.nir.scaling import Scaling, fit_scaling


@dataclass
class PairedScene:
    """One scene in unit scaling: ``rgb (3, H, W)``, ``nir (H, W)``, ``valid (H, W)``, train columns ``< split``.

    A scene for :class:`geotool.training.sampler.RandomWindowDataset`: the ``"train"`` region is the west
    columns, ``"val"`` the east ones.
    """

    path: str
    rgb: np.ndarray
    nir: np.ndarray
    valid: np.ndarray
    split: int

    def region(self, split: str) -> np.ndarray:
        """``(H, W)`` bool: the west (``"train"``) or east (``"val"``) columns."""
        west = np.arange(self.valid.shape[1]) < self.split
        return np.broadcast_to(west if split == "train" else ~west, self.valid.shape)

    def positions(self, split: str, window: int) -> np.ndarray:
        """Top-left ``(row, col)`` of every window wholly inside the region (``(n, 2)`` int64)."""
        h, w = self.valid.shape
        c0, c1 = (0, self.split) if split == "train" else (self.split, w)
        rows, cols = np.arange(0, h - window + 1), np.arange(c0, c1 - window + 1)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.int64)

    def crop(self, row: int, col: int, window: int, ignore_index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb (3,w,w), nir (w,w), valid (w,w))`` at ``(row, col)`` (views; windows always fit, see
        :func:`to_scenes`). ``ignore_index`` is unused (a NIR target has no ignore value)."""
        sl = (slice(row, row + window), slice(col, col + window))
        return self.rgb[(slice(None),) + sl], self.nir[sl], self.valid[sl]


def read_paired(
    paths: Sequence[str | Path],
    rgb_bands: Sequence[int | str],
    nir_band: int | str,
    nir_paths: Sequence[str | Path] | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[str], list]]:
    """Read each paired scene (or RGB + separate NIR raster on the same grid) in stored units.

    Returns:
        ``(path, rgb (3,H,W), nir (H,W), valid, dtypes, nodata)`` per scene; dtypes/nodata are RGB then NIR.
    """
    out = []
    for i, path in enumerate(paths):
        if nir_paths:
            stack = read_stack([path, nir_paths[i]], bands=list(rgb_bands) + [_offset_band(path, nir_band)])
        else:
            stack = read_stack(path, bands=list(rgb_bands) + [nir_band])
        if not stack.valid.any():
            raise EmptyDataError(f"{path} has no valid pixels in the RGB and NIR bands")
        out.append((str(path), stack.data[:-1], stack.data[-1], stack.valid, stack.dtypes, stack.nodata))
    return out


def _offset_band(path, nir_band):
    """The NIR band number in the concatenated [RGB file, NIR file] band list."""
    from geotool.io.raster import RasterSource

    with RasterSource(path) as src:
        n = src.total_band_count
    return n + int(nir_band)


def fit_scalings(scenes, kind: str, split_fraction: float) -> tuple[Scaling, Scaling]:
    """Fit the RGB and NIR scalings on the training-region pixels of every scene."""
    rgb_vals, nir_vals = [], []
    for _, rgb, nir, valid, _, _ in scenes:
        split = int(round(rgb.shape[2] * split_fraction))
        v = valid[:, :split]
        rgb_vals.append(rgb[:, :, :split][:, v][:, ::7])
        nir_vals.append(nir[:, :split][v][::7])
    rgb_all = np.concatenate(rgb_vals, axis=1)
    nir_all = np.concatenate(nir_vals)[None]
    dtypes = scenes[0][4]
    return fit_scaling(kind, rgb_all, dtypes[0]), fit_scaling(kind, nir_all, dtypes[-1])


def training_domain(scenes, rgb_scaling: Scaling, split_fraction: float):
    """The colour domain (:class:`geotool.nir.domain.TrainingDomain`) of the training regions: each scene's
    unit-scale RGB histogram (every 7th valid pixel, as the scalings are fitted) and their pooled spread."""
    from geotool.nir.domain import TrainingDomain, histogram

    hists = []
    for _, rgb, _, valid, _, _ in scenes:
        split = int(round(rgb.shape[2] * split_fraction))
        hists.append(histogram(rgb_scaling.to_unit(rgb[:, :, :split][:, valid[:, :split]][:, ::7])))
    return TrainingDomain.from_scenes(hists)


def to_scenes(raw, rgb_scaling: Scaling, nir_scaling: Scaling, split_fraction: float, window: int) -> list[PairedScene]:
    """Scale raw scenes to unit range; the west ``split_fraction`` of the columns is for training."""
    scenes = []
    for path, rgb, nir, valid, _, _ in raw:
        h, w = valid.shape
        split = int(round(w * split_fraction))
        if h < window or split < window or (w - split) < window:
            raise ConfigError(
                f"{path} ({w}x{h} px) is too small for {window}-px windows with a {split_fraction:.0%}/{1 - split_fraction:.0%} "
                "west/east split; lower --window or --val-fraction"
            )
        rgb_u = np.where(valid, rgb_scaling.to_unit(rgb), 0).astype(np.float32)
        nir_u = np.where(valid, nir_scaling.to_unit(nir[None])[0], 0).astype(np.float32)
        scenes.append(PairedScene(path, rgb_u, nir_u, valid, split))
    return scenes


def fill_invalid(rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Windows ``(..., 3, h, w)`` with their invalid pixels set to the window's mean over its valid pixels,
    band by band (0 where none is valid), so that nodata does not pull the generator's normalisation
    statistics, or the context of the valid pixels next to it, towards black. ``valid``: ``(..., h, w)``."""
    v = valid[..., None, :, :]
    n = v.sum(axis=(-2, -1), keepdims=True)
    mean = np.where(v, rgb, 0).sum(axis=(-2, -1), keepdims=True, dtype=np.float64) / np.maximum(n, 1)
    return np.where(v, rgb, mean.astype(rgb.dtype))


def augment(rgb: np.ndarray, nir: np.ndarray, valid: np.ndarray, code: int):
    """Apply one of 8 dihedral transforms (flips and rot90) to input, target and mask together."""
    k, flip = code % 4, code // 4
    arrs = [rgb, nir[None], valid[None]]
    if flip:
        arrs = [a[:, :, ::-1] for a in arrs]
    arrs = [np.rot90(a, k, axes=(1, 2)) for a in arrs]
    return (np.ascontiguousarray(arrs[0]), np.ascontiguousarray(arrs[1][0]), np.ascontiguousarray(arrs[2][0]))


def training_windows(scenes: list[PairedScene], window: int, length: int, seed: int, augment_data: bool = True):
    """Random training windows (a map dataset); item ``i`` of epoch ``e`` is a pure function of the seed.

    Windows lie wholly inside each scene's training (west) region and hold at least 50% valid pixels;
    their invalid pixels are filled (:func:`fill_invalid`) and, with ``augment_data``, one of the 8 dihedral
    transforms is applied to input, target and mask together.
    """
    from geotool.training.sampler import RandomWindowDataset

    def item(rgb, nir, valid, rng):
        rgb = fill_invalid(rgb, valid)
        if augment_data:
            rgb, nir, valid = augment(rgb, nir, valid, int(rng.integers(0, 8)))
        return rgb.copy(), nir[None].copy(), valid[None].copy()

    return RandomWindowDataset(scenes, window, length, seed, "train", min_valid=0.5, item=item)


def validation_windows(scenes: list[PairedScene], window: int, max_windows: int = 16):
    """Non-overlapping windows of the east (validation) regions with at least 50% valid pixels, in order,
    at most ``max_windows`` evenly spread over them (a map dataset)."""
    from geotool.training.sampler import FixedWindowDataset, grid_windows

    items = grid_windows(scenes, window, "val", max_windows, seed=0, min_valid=0.5, spread="even")
    if not items:
        raise EmptyDataError("no validation window with at least 50% valid pixels in the east regions; lower --window")
    return FixedWindowDataset(scenes, items, window, 0, lambda rgb, nir, valid: (fill_invalid(rgb, valid), nir[None].copy(), valid[None].copy()))
