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
    """One scene in unit scaling (RGB harmonised): ``rgb (3, H, W)``, ``nir (H, W)``, ``valid (H, W)``, train
    columns ``< split`` (0: a validation scene, ``W``: a training scene without validation columns).

    A scene for :class:`geotool.training.sampler.RandomWindowDataset`: the ``"train"`` region is the west
    columns, ``"val"`` the east ones.
    """

    path: str
    rgb: np.ndarray
    nir: np.ndarray
    valid: np.ndarray
    split: int
    histograms: tuple = ()  # (before, after harmonisation) RGB histograms of the training region, see to_scenes

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


def scene_splits(raw, val_fraction: float, val_scenes: Sequence[str] = ()) -> list[int]:
    """Each scene's first validation column: ``round(W * (1 - val_fraction))`` (west trains, east validates)
    without ``val_scenes``; with them, 0 for those (held out whole) and ``W`` for the rest (trained whole)."""
    held = set(val_scenes)
    if held:
        return [0 if path in held else rgb.shape[2] for path, rgb, *_ in raw]
    return [int(round(rgb.shape[2] * (1.0 - val_fraction))) for _, rgb, *_ in raw]


def window_fits(shape: tuple[int, int], split: int, window: int) -> bool:
    """True when ``window``-px windows fit a scene of ``shape`` (H, W) on both sides of its split column."""
    h, w = shape
    return h >= window and not 0 < split < window and not 0 < w - split < window


def largest_fitting_window(raw, splits: Sequence[int], window: int, smallest: int = 32) -> int | None:
    """The largest ``window / 2**k`` (down to ``smallest``) that fits every scene, or None."""
    while window >= smallest:
        if all(window_fits(r[3].shape, split, window) for r, split in zip(raw, splits)):
            return window
        window //= 2
    return None


def lattice_sample(path: str, bands: Sequence[int | str]) -> np.ndarray:
    """Stored RGB values ``(3, n)`` of the lattice of windows of :func:`geotool.io.sampling.sample_values`:
    what a scene's scaling and harmonisation are computed from, in training and in ``generate-nir`` alike."""
    from geotool.io.raster import RasterSource
    from geotool.io.sampling import sample_values

    with RasterSource(path, bands=list(bands)) as src:
        return sample_values(src)


def fit_scalings(raw, kind: str, splits: Sequence[int], samples: Sequence[np.ndarray]) -> tuple[list[Scaling], Scaling]:
    """Each scene's own RGB scaling (``kind`` resolved on its dtype and lattice sample, as ``generate-nir``
    resolves an input's) and one NIR scaling fitted on every scene's training-region pixels (the target's
    units must be one across scenes)."""
    rgb = [fit_scaling(kind, sample, dtypes[0]) for (_, _, _, _, dtypes, _), sample in zip(raw, samples)]
    nir_vals = [nir[:, :split][valid[:, :split]][::7] for (_, _, nir, valid, _, _), split in zip(raw, splits)]
    return rgb, fit_scaling(kind, np.concatenate(nir_vals)[None], raw[0][4][-1])


def training_domain(scenes: Sequence["PairedScene"], raw_unit: bool = False):
    """The colour domain (:class:`geotool.nir.domain.TrainingDomain`) of the training regions from each
    scene's histograms (see :func:`to_scenes`): of the model's (harmonised) input, or with ``raw_unit`` of
    the scaled RGB before harmonisation."""
    from geotool.nir.domain import TrainingDomain

    return TrainingDomain.from_scenes([s.histograms[0 if raw_unit else 1] for s in scenes if s.histograms])


def to_scenes(raw, rgb_scalings: Sequence[Scaling], transforms, nir_scaling: Scaling, splits: Sequence[int],
              window: int) -> list[PairedScene]:
    """Scale raw scenes to unit range, each with its own RGB scaling, then harmonise each with its own
    :class:`~geotool.nir.harmonise.SceneTransform`; columns ``< split`` train, the rest validate."""
    from geotool.nir.domain import histogram

    scenes = []
    for (path, rgb, nir, valid, _, _), scaling, transform, split in zip(raw, rgb_scalings, transforms, splits):
        h, w = valid.shape
        if not window_fits(valid.shape, split, window):
            raise ConfigError(
                f"{path} ({w}x{h} px) is too small for {window}-px windows with a {split / w:.0%}/{1 - split / w:.0%} "
                "west/east split; lower --window or --val-fraction, or hold whole scenes out with --val-scenes"
            )
        unit = np.where(valid, scaling.to_unit(rgb), 0).astype(np.float32)
        rgb_u = np.where(valid, transform.apply(unit), 0).astype(np.float32)
        nir_u = np.where(valid, nir_scaling.to_unit(nir[None])[0], 0).astype(np.float32)
        hists = ()
        if split:  # the unit-scale RGB histograms of the training region, before and after harmonisation
            train = valid[:, :split]
            hists = tuple(histogram(a[:, :, :split][:, train][:, ::7]) for a in (unit, rgb_u))
        scenes.append(PairedScene(path, rgb_u, nir_u, valid, split, hists))
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


def color_jitter(rgb: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Per-band illumination change of one unit-scale window ``(3, h, w)`` (the input only; NIR is untouched):
    gamma ``exp(U(-0.4, 0.4) s)``, contrast ``exp(U(-0.3, 0.3) s)`` about the band's window mean and brightness
    ``U(-0.1, 0.1) s`` (unit scale), all drawn from ``rng``. ``strength`` ``s`` 0 is the identity, 1 a strong
    change (about what separates the NAIP dates' band means)."""
    gamma, contrast = np.exp(rng.uniform(-0.4, 0.4, 3) * strength), np.exp(rng.uniform(-0.3, 0.3, 3) * strength)
    shift = rng.uniform(-0.1, 0.1, 3) * strength
    out = np.clip(rgb, 0, None) ** gamma[:, None, None]
    mean = out.mean(axis=(1, 2), keepdims=True)
    return ((out - mean) * contrast[:, None, None] + mean + shift[:, None, None]).astype(np.float32)


def training_windows(scenes: list[PairedScene], window: int, length: int, seed: int, augment_data: bool = True,
                     jitter: float = 0.0):
    """Random training windows (a map dataset); item ``i`` of epoch ``e`` is a pure function of the seed.

    Windows lie wholly inside each scene's training (west) region and hold at least 50% valid pixels;
    scenes are drawn in proportion to their valid training pixels. Invalid pixels are filled
    (:func:`fill_invalid`); with ``jitter`` > 0 the RGB gets :func:`color_jitter` of that strength, and with
    ``augment_data`` one of the 8 dihedral transforms is applied to input, target and mask together.
    """
    from geotool.training.sampler import RandomWindowDataset

    def item(rgb, nir, valid, rng):
        rgb = fill_invalid(rgb, valid)
        code = int(rng.integers(0, 8)) if augment_data else 0  # drawn first: jitter changes colours, not windows
        if jitter > 0:
            rgb = color_jitter(rgb, jitter, rng)
        if augment_data:
            rgb, nir, valid = augment(rgb, nir, valid, code)
        return rgb.copy(), nir[None].copy(), valid[None].copy()

    return RandomWindowDataset(scenes, window, length, seed, "train", min_valid=0.5, item=item)


def validation_windows(scenes: list[PairedScene], window: int, max_windows: int = 16):
    """Non-overlapping windows of the east (validation) regions with at least 50% valid pixels, in order,
    at most ``max_windows`` evenly spread over them (a map dataset)."""
    from geotool.training.sampler import FixedWindowDataset, grid_windows

    items = grid_windows(scenes, window, "val", max_windows, seed=0, min_valid=0.5, spread="even")
    if not items:
        raise EmptyDataError("no validation window with at least 50% valid pixels in the east regions or --val-scenes; lower --window")
    return FixedWindowDataset(scenes, items, window, 0, lambda rgb, nir, valid: (fill_invalid(rgb, valid), nir[None].copy(), valid[None].copy()))
