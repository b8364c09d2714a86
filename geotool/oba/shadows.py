"""Shadows cast by pasted objects from a sun position: a swept footprint, darkened background pixels."""

from __future__ import annotations

import numpy as np

from geotool.oba.placement import clip_box


def shadow_offset(length_px: float, sun_azimuth: float) -> tuple[float, float]:
    """Row/col displacement of the shadow tip: away from the sun (azimuth clockwise from north)."""
    az = np.deg2rad(sun_azimuth)
    return float(np.cos(az) * length_px), float(-np.sin(az) * length_px)


def shadow_length(height_m: float, sun_elevation: float, res: float) -> float:
    """Shadow length in pixels: height / tan(elevation) / pixel size."""
    return height_m / np.tan(np.deg2rad(sun_elevation)) / res


def cast_shadow(
    scene: np.ndarray,
    footprint: np.ndarray,
    blocked: np.ndarray,
    length_px: float,
    sun_azimuth: float,
    factor: float,
) -> np.ndarray:
    """Darken (in place) the background pixels swept by ``footprint`` moved away from the sun.

    Args:
        scene: ``(bands, H, W)`` float32.
        footprint: ``(H, W)`` bool, the object.
        blocked: ``(H, W)`` bool, pixels never darkened (objects, nodata).
        factor: multiplier 0..1.

    Returns:
        ``(H, W)`` bool, the darkened pixels.
    """
    H, W = footprint.shape
    dr, dc = shadow_offset(length_px, sun_azimuth)
    steps = int(np.ceil(max(abs(dr), abs(dc))))
    shadow = np.zeros((H, W), bool)
    if steps == 0 or not footprint.any():
        return shadow
    rows = np.flatnonzero(footprint.any(axis=1))
    cols = np.flatnonzero(footprint.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    obj = footprint[r0:r1, c0:c1]
    for t in range(1, steps + 1):
        sr, sc = int(round(r0 + dr * t / steps)), int(round(c0 + dc * t / steps))
        boxes = clip_box(sr, sc, *obj.shape, H, W)
        if boxes is not None:
            shadow[boxes[0]] |= obj[boxes[1]]
    shadow &= ~blocked & ~footprint
    scene[:, shadow] *= factor
    return shadow
