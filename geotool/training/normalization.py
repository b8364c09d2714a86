"""Per-band normalisation statistics from training pixels only (whole arrays, or a sample of windows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandStatistics:
    """Per-band ``mean`` and ``std`` (raw units) and the 0-based indices of ``constant`` bands.

    Unpacks as ``mean, std = band_statistics(...)``.
    """

    mean: list[float]
    std: list[float]
    constant: list[int]

    def __iter__(self):
        return iter((self.mean, self.std))


def band_statistics(images: list[np.ndarray], masks: list[np.ndarray]) -> BandStatistics:
    """Mean and standard deviation per band over the pixels where ``mask`` is True.

    Args:
        images: ``(C, H, W)`` arrays in raw units.
        masks: ``(H, W)`` bool arrays (valid and inside the training region).

    Returns:
        mean and std lists of length C, raw units, and the constant bands. A (near-)constant band (std below 1e-3 of
        ``max(|mean|, 1)``, e.g. an untagged alpha band) gets ``std = max(|mean|, 1)`` instead, so that
        small changes to it (blending, jitter, nodata fill) stay small after normalisation rather than
        being divided by ~0.
    """
    c = images[0].shape[0]
    total = np.zeros(c)
    sq = np.zeros(c)
    n = 0
    for img, m in zip(images, masks):
        px = img[:, m].astype(np.float64)
        total += px.sum(1)
        sq += (px**2).sum(1)
        n += px.shape[1]
    return _statistics(total, sq, n)


def window_statistics(scenes, window: int, n_windows: int, seed: int, split: str = "train") -> BandStatistics:
    """:func:`band_statistics` over the valid pixels of ``n_windows`` random windows (``scene.pixels``) of the ``split`` region
    (scenes weighted by their number of window positions, as the training sampler draws them), so that
    no scene is read whole. Same seed, same windows.
    """
    pos = [s.positions(split, window) for s in scenes]
    weights = np.array([len(p) for p in pos], np.float64)
    if weights.sum() == 0:
        raise ValueError(f"no {window}-pixel window fits inside the {split} region of any scene")
    rng = np.random.default_rng([seed, 0x5747])  # not the training windows' streams
    total = sq = None
    n = 0
    for k in rng.choice(len(scenes), size=n_windows, p=weights / weights.sum()):
        row, col = pos[k][int(rng.integers(len(pos[k])))]
        img, valid = scenes[k].pixels(int(row), int(col), window)
        px = img[:, valid].astype(np.float64)
        total = px.sum(1) if total is None else total + px.sum(1)
        sq = (px**2).sum(1) if sq is None else sq + (px**2).sum(1)
        n += px.shape[1]
    return _statistics(total, sq, n)


def _statistics(total, sq, n: int) -> BandStatistics:
    """Mean, std (constant bands widened) from per-band sums and sums of squares of ``n`` pixels."""
    if n == 0:
        raise ValueError("no training pixel to compute normalisation statistics from")
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean**2, 0.0))
    scale = np.maximum(np.abs(mean), 1.0)
    constant = std < 1e-3 * scale
    return BandStatistics(mean.tolist(), np.where(constant, scale, std).tolist(), np.flatnonzero(constant).tolist())


def normalize(image: np.ndarray, mean, std) -> np.ndarray:
    """``(image - mean) / std`` per band, float32."""
    m = np.asarray(mean, np.float32).reshape(-1, *([1] * (image.ndim - 1)))
    s = np.asarray(std, np.float32).reshape(-1, *([1] * (image.ndim - 1)))
    return ((image - m) / s).astype(np.float32)
