"""Blending: paste a chip with a hard mask or a Gaussian-feathered alpha; ignore rings in the mask."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geotool.oba.placement import clip_box, dilate


def alpha_weights(alpha: np.ndarray, mode: str, sigma: float) -> np.ndarray:
    """Paste weights ``(h, w)`` in 0..1: the alpha itself (hard) or alpha times its Gaussian blur.

    The feathered weight is zero outside the object, so the background outside the object is never changed.
    """
    hard = alpha.astype(np.float32)
    if mode == "hard":
        return hard
    pad = int(np.ceil(3 * sigma))
    blurred = ndimage.gaussian_filter(np.pad(hard, pad), sigma)[pad:-pad or None, pad:-pad or None]
    return hard * np.clip(blurred * 1.5, 0.0, 1.0)


def paste(scene: np.ndarray, chip: np.ndarray, weights: np.ndarray, row: int, col: int) -> np.ndarray:
    """Blend ``chip`` into ``scene`` (both float32, ``(bands, ...)``) in place at top-left ``(row, col)``.

    Returns the ``(H, W)`` boolean footprint of the pasted object (weights > 0) in scene pixels.
    """
    H, W = scene.shape[1:]
    footprint = np.zeros((H, W), bool)
    boxes = clip_box(row, col, *weights.shape, H, W)
    if boxes is None:
        return footprint
    ss, cs = boxes
    wt = weights[cs]
    target = scene[:, ss[0], ss[1]]
    target += (chip[:, cs[0], cs[1]] - target) * wt
    footprint[ss] = wt > 0
    return footprint


def ignore_ring(footprint: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels of the footprint's boundary (both sides)."""
    if width <= 0:
        return np.zeros_like(footprint)
    outer = dilate(footprint, width)
    inner = ~dilate(~footprint, width)
    return outer & ~inner
