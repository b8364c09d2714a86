"""Per-object transforms: geometry (rot90, flip, free rotation, resampling + scale jitter) and colour
(brightness/contrast jitter and mean/std or histogram matching), colour applied inside the object only."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from geotool.oba.config import OBAConfig


def geometric(
    image: np.ndarray, alpha: np.ndarray, zoom: float, rng: np.random.Generator, cfg: OBAConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Random rot90/flip, free rotation and resampling of one chip.

    Args:
        image: ``(bands, h, w)`` float32.
        alpha: ``(h, w)`` bool.
        zoom: resampling factor from the chip's pixel size to the output's (chip res / output res).
        cfg: which transforms are on and their ranges.

    Returns:
        image, alpha (cropped to the object's bounding box) and a record of what was done.
    """
    k = int(rng.integers(4)) if cfg.rot90 else 0
    flip = bool(rng.integers(2)) if cfg.flip else False
    angle = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation)) if cfg.max_rotation > 0 else 0.0
    scale = float(rng.uniform(*cfg.scale_range))
    if k:
        image, alpha = np.rot90(image, k, axes=(1, 2)), np.rot90(alpha, k)
    if flip:
        image, alpha = image[:, :, ::-1], alpha[:, ::-1]
    factor = zoom * scale
    if angle != 0.0 or abs(factor - 1.0) > 1e-9:
        # one affine resampling: bilinear for pixels, alpha resampled as float and thresholded at 0.5
        h, w = alpha.shape
        out_h = out_w = int(np.ceil(np.hypot(h, w) * factor)) + 2 if angle else 0
        if not angle:
            out_h, out_w = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
        theta = np.deg2rad(angle)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) / factor
        centre_in = (np.array([h, w]) - 1) / 2.0
        centre_out = (np.array([out_h, out_w]) - 1) / 2.0
        offset = centre_in - rot @ centre_out
        a = ndimage.affine_transform(alpha.astype(np.float32), rot, offset, (out_h, out_w), order=1, mode="grid-constant", cval=0.0)
        new_alpha = a >= 0.5
        new_image = np.stack(
            [ndimage.affine_transform(b, rot, offset, (out_h, out_w), order=1, mode="nearest") for b in image]
        ).astype(np.float32)
        image, alpha = new_image, new_alpha
    image, alpha = crop_to_alpha(np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(alpha))
    return image, alpha, {"rot90": k, "flip": flip, "angle": round(angle, 4), "scale": round(scale, 6), "zoom": round(zoom, 6)}


def crop_to_alpha(image: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop a chip to the bounding box of its alpha (unchanged when alpha is empty)."""
    if not alpha.any():
        return image, alpha
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return image[:, sl[0], sl[1]], alpha[sl]


def colour_jitter(
    image: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, cfg: OBAConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """Brightness and contrast jitter computed from and applied to the object's pixels only.

    Pixels outside ``alpha`` are returned unchanged (they are never pasted anyway).
    """
    b = float(rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)) if cfg.brightness > 0 else 1.0
    c = float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)) if cfg.contrast > 0 else 1.0
    if b == 1.0 and c == 1.0 or not alpha.any():
        return image, {"brightness": b, "contrast": c}
    out = image.copy()
    inside = out[:, alpha]
    mean = inside.mean(axis=1, keepdims=True)
    out[:, alpha] = ((inside - mean) * c + mean) * b
    return out, {"brightness": round(b, 6), "contrast": round(c, 6)}


def match_to_background(
    image: np.ndarray, alpha: np.ndarray, background: np.ndarray, bg_valid: np.ndarray, mode: str
) -> np.ndarray:
    """Match the object's per-band statistics to the local background pixels.

    Args:
        image: ``(bands, h, w)`` chip; only pixels under ``alpha`` are changed.
        background: ``(bands, H, W)`` local background (e.g. the area under and around the paste).
        bg_valid: ``(H, W)`` pixels of ``background`` to use.
        mode: ``"meanstd"`` or ``"histogram"`` (``"none"`` returns the chip unchanged).
    """
    if mode == "none" or not alpha.any() or bg_valid.sum() < 4:
        return image
    out = image.copy()
    ref = background[:, bg_valid].astype(np.float32)
    for band in range(out.shape[0]):
        obj = out[band][alpha]
        if mode == "meanstd":
            std = obj.std()
            scale = ref[band].std() / std if std > 1e-6 else 1.0
            out[band][alpha] = (obj - obj.mean()) * scale + ref[band].mean()
        else:
            ranks = np.argsort(np.argsort(obj, kind="stable"), kind="stable")
            quantiles = (ranks + 0.5) / obj.size
            out[band][alpha] = np.quantile(ref[band], quantiles)
    return out
