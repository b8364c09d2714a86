"""Placement: where an object may go (valid pixels only, no overlap, a minimum gap, border clipping)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def clip_box(row: int, col: int, h: int, w: int, H: int, W: int):
    """Scene slice and chip slice of a ``h x w`` chip with top-left at ``(row, col)`` in an ``H x W`` scene.

    Returns ``None`` when the chip is entirely outside.
    """
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + h, H), min(col + w, W)
    if r1 <= r0 or c1 <= c0:
        return None
    return (slice(r0, r1), slice(c0, c1)), (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))


def forbidden_map(valid: np.ndarray, labelled: np.ndarray, gap: int) -> np.ndarray:
    """Pixels no pasted object pixel may cover: invalid ones and those within ``gap`` pixels of a label."""
    near = dilate(labelled, gap) if labelled.any() else labelled.copy()
    return ~valid | near


def dilate(mask: np.ndarray, gap: int) -> np.ndarray:
    """Square (Chebyshev) dilation by ``gap`` pixels (a copy when ``gap`` is 0)."""
    if gap <= 0:
        return mask.copy()
    # a square structuring element is separable: two 1-D running maxima, much faster than binary_dilation
    return ndimage.maximum_filter(mask.view(np.uint8), size=2 * gap + 1, mode="constant", cval=0) > 0


def find_position(
    alpha: np.ndarray,
    forbidden: np.ndarray,
    rng: np.random.Generator,
    tries: int,
    border_clip: bool = True,
    min_visible: float = 0.6,
) -> tuple[int, int] | None:
    """A random top-left ``(row, col)`` where the object covers no forbidden pixel.

    With ``border_clip`` the object may stick out of the scene as long as ``min_visible`` of its pixels
    stay inside; otherwise it must fit entirely. Returns None after ``tries`` failed draws.
    """
    H, W = forbidden.shape
    h, w = alpha.shape
    total = alpha.sum()
    if total == 0:
        return None
    if border_clip:
        rlo, rhi, clo, chi = -h + 1, H - 1, -w + 1, W - 1
    else:
        if h > H or w > W:
            return None
        rlo, rhi, clo, chi = 0, H - h, 0, W - w
    for _ in range(tries):
        row, col = int(rng.integers(rlo, rhi + 1)), int(rng.integers(clo, chi + 1))
        boxes = clip_box(row, col, h, w, H, W)
        if boxes is None:
            continue
        (ss, cs) = boxes
        part = alpha[cs]
        if part.sum() < min_visible * total:
            continue
        if not (part & forbidden[ss]).any():
            return row, col
    return None


def mark_placed(forbidden: np.ndarray, alpha: np.ndarray, row: int, col: int, gap: int) -> None:
    """Forbid the pasted object and its ``gap``-pixel surround for later objects (in place)."""
    padded = np.pad(alpha, gap)
    grown = dilate(padded, gap)
    boxes = clip_box(row - gap, col - gap, *grown.shape, *forbidden.shape)
    if boxes is not None:
        forbidden[boxes[0]] |= grown[boxes[1]]


def draw_object(
    class_index: dict[int, np.ndarray],
    counts: dict[int, int],
    limits: dict[int, int],
    balanced: bool,
    rng: np.random.Generator,
) -> int | None:
    """Index of a bank object: class-balanced (class first) or uniform, skipping classes at their limit."""
    open_classes = [c for c in sorted(class_index) if counts.get(c, 0) < limits.get(c, 1 << 30)]
    if not open_classes:
        return None
    if balanced:
        cls = open_classes[int(rng.integers(len(open_classes)))]
        members = class_index[cls]
    else:
        members = np.concatenate([class_index[c] for c in open_classes])
    return int(members[int(rng.integers(len(members)))])
