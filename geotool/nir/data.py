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
    """One scene in unit scaling: ``rgb (3, H, W)``, ``nir (H, W)``, ``valid (H, W)``, train columns ``< split``."""

    path: str
    rgb: np.ndarray
    nir: np.ndarray
    valid: np.ndarray
    split: int


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


class RandomWindows:
    """Map-style dataset of random training windows; item ``i`` of epoch ``e`` is a pure function of the seed.

    Windows lie wholly inside each scene's training (west) region and hold at least 50% valid pixels.
    """

    def __init__(self, scenes: list[PairedScene], window: int, length: int, seed: int, augment_data: bool = True) -> None:
        self.scenes, self.window, self.length, self.seed, self.augment = scenes, window, length, seed, augment_data
        self.epoch = 0
        weights = np.array([s.valid[:, : s.split].sum() for s in scenes], float)
        self.p = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        for _ in range(50):
            s = self.scenes[rng.choice(len(self.scenes), p=self.p)]
            r = int(rng.integers(0, s.valid.shape[0] - self.window + 1))
            c = int(rng.integers(0, s.split - self.window + 1))
            sl = (slice(r, r + self.window), slice(c, c + self.window))
            valid = s.valid[sl]
            if valid.mean() >= 0.5:
                break
        rgb, nir = fill_invalid(s.rgb[(slice(None),) + sl], valid), s.nir[sl]
        if self.augment:
            rgb, nir, valid = augment(rgb, nir, valid, int(rng.integers(0, 8)))
        return rgb.copy(), nir[None].copy(), valid[None].copy()


def validation_windows(scenes: list[PairedScene], window: int, max_windows: int = 16):
    """Non-overlapping windows of the east (validation) regions, in order, at most ``max_windows``."""
    items = []
    for s in scenes:
        h, w = s.valid.shape
        for r in range(0, h - window + 1, window):
            for c in range(s.split, w - window + 1, window):
                sl = (slice(r, r + window), slice(c, c + window))
                if s.valid[sl].mean() >= 0.5:
                    items.append((fill_invalid(s.rgb[(slice(None),) + sl], s.valid[sl]), s.nir[sl][None].copy(), s.valid[sl][None].copy()))
    if not items:
        raise EmptyDataError("no validation window with at least 50% valid pixels in the east regions; lower --window")
    step = max(1, len(items) // max_windows)
    return items[::step][:max_windows]
