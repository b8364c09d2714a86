"""Compose one scene: paste transformed bank objects onto a background window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geotool.oba.bank import ObjectBank
from geotool.oba.blending import alpha_weights, ignore_ring, paste
from geotool.oba.config import OBAConfig
from geotool.oba.placement import draw_object, find_position, forbidden_map, mark_placed
from geotool.oba.shadows import cast_shadow, shadow_length
from geotool.oba.transforms import colour_jitter, geometric, match_to_background


@dataclass
class Composite:
    """A composed scene.

    Attributes:
        image: ``(bands, H, W)`` float32 in the input's units.
        mask: ``(H, W)`` int64 class ids (0 background, ``ignore_index`` on nodata and ignore rings).
        instances: ``(H, W)`` int32, 1-based index of the pasted object at each pixel (0 elsewhere).
        placements: one record per pasted object (bank object, transforms, position).
        skipped: objects drawn but not placed (no free spot after ``max_tries``).
    """

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    placements: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


def compose_scene(
    background: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray | None,
    bank: ObjectBank,
    rng: np.random.Generator,
    cfg: OBAConfig,
    res: float,
    class_index: dict[int, np.ndarray] | None = None,
) -> Composite:
    """Paste between ``cfg.n_objects`` objects onto ``background``.

    Args:
        background: ``(bands, H, W)`` pixels (any numeric dtype; a float32 copy is made).
        valid: ``(H, W)`` bool; objects only land on valid pixels and nodata pixels are never changed.
        labels: ``(H, W)`` existing class ids of the window (0 = none, ``cfg.ignore_index`` = ignore) or None.
            Existing labelled pixels are kept and avoided with ``cfg.min_gap``.
        res: output pixel size (CRS units), chips are resampled from their own pixel size to it.
    """
    image = background.astype(np.float32, copy=True)
    H, W = valid.shape
    mask = np.zeros((H, W), np.int64) if labels is None else labels.astype(np.int64, copy=True)
    labelled = (mask != 0) & (mask != cfg.ignore_index)
    forbidden = forbidden_map(valid, labelled | (mask == cfg.ignore_index), cfg.min_gap)
    objects_px = labelled.copy()
    instances = np.zeros((H, W), np.int32)
    out = Composite(image, mask, instances)
    if len(bank) == 0:
        mask[~valid] = cfg.ignore_index
        return out
    class_index = class_index if class_index is not None else bank.by_class()
    counts: dict[int, int] = {}
    n = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    rings = np.zeros((H, W), bool)
    for _ in range(n):
        placed = False
        for _redraw in range(3):
            idx = draw_object(class_index, counts, cfg.class_limits, cfg.class_balanced, rng)
            if idx is None:
                break
            obj = bank.objects[idx]
            chip, alpha, record = geometric(obj.image.astype(np.float32), obj.alpha, obj.res / res, rng, cfg)
            if alpha.sum() < min(cfg.min_object_pixels, obj.n_pixels):
                continue  # resampling shrank it to a speck
            pos = find_position(alpha, forbidden, rng, cfg.max_tries, cfg.border_clip, cfg.min_visible)
            if pos is None:
                continue
            row, col = pos
            chip, jitter = colour_jitter(chip, alpha, rng, cfg)
            record.update(jitter)
            if cfg.match != "none":
                h, w = alpha.shape
                r0, r1 = max(row - h, 0), min(row + 2 * h, H)
                c0, c1 = max(col - w, 0), min(col + 2 * w, W)
                local_ok = valid[r0:r1, c0:c1] & ~objects_px[r0:r1, c0:c1]
                chip = match_to_background(chip, alpha, image[:, r0:r1, c0:c1], local_ok, cfg.match)
            weights = alpha_weights(alpha, cfg.blend, cfg.feather_sigma)
            footprint = paste(image, chip, weights, row, col)
            mark_placed(forbidden, alpha, row, col, cfg.min_gap)
            objects_px |= footprint
            number = len(out.placements) + 1
            mask[footprint] = obj.class_id
            instances[footprint] = number
            if cfg.ignore_ring:
                rings |= ignore_ring(footprint, cfg.ignore_ring)
            if cfg.shadows.enabled:
                record.update(_shadow(image, footprint, objects_px | ~valid, obj, rng, cfg, res))
            counts[obj.class_id] = counts.get(obj.class_id, 0) + 1
            out.placements.append(
                {
                    "instance": number,
                    "bank_index": idx,
                    "source": obj.source,
                    "object_id": obj.object_id,
                    "class_id": obj.class_id,
                    "row": row,
                    "col": col,
                    "height_px": int(alpha.shape[0]),
                    "width_px": int(alpha.shape[1]),
                    "pixels": int(footprint.sum()),
                    **record,
                }
            )
            placed = True
            break
        if not placed:
            out.skipped += 1
    if cfg.ignore_ring:
        mask[rings & (instances == 0) & ~labelled] = cfg.ignore_index
        mask[rings & (instances > 0)] = cfg.ignore_index
    mask[~valid] = cfg.ignore_index
    return out


def _shadow(image, footprint, blocked, obj, rng, cfg: OBAConfig, res: float) -> dict[str, Any]:
    sh = cfg.shadows
    if obj.height is not None and sh.height_attribute:
        height = obj.height
    else:
        lo, hi = sh.class_heights.get(obj.class_id, sh.height_range)
        height = float(rng.uniform(lo, hi))
    factor = float(rng.uniform(*sh.darkening))
    length = shadow_length(height, sh.sun_elevation, res)
    cast_shadow(image, footprint, blocked, length, sh.sun_azimuth, factor)
    return {"shadow_height_m": round(height, 3), "shadow_length_px": round(float(length), 3), "shadow_factor": round(factor, 4)}
