"""Spatial block split: whole blocks of a scene go to training or validation, never single pixels.

A scene of ``height x width`` pixels is cut into square blocks of ``block`` pixels; a seeded random subset
holding about ``val_fraction`` of the blocks becomes the validation region, the rest the training region.
Windows are then drawn only at positions whose in-scene footprint lies wholly inside one region
(:func:`window_positions`), so no training window overlaps a validation pixel.
"""

from __future__ import annotations

import numpy as np


def block_split(height: int, width: int, block: int, val_fraction: float, seed: int,
                window: int | None = None, tries: int = 64) -> np.ndarray:
    """Region masks of a scene: ``(height, width)`` bool, True = validation block.

    Args:
        height, width: scene size, pixels.
        block: block side, pixels (use at least the window size so that whole windows fit in a block).
        val_fraction: share of blocks kept for validation, in (0, 1); 0 gives no validation region.
        seed: random seed (same seed, same split).
        window: when given, redraw (seeded, up to ``tries`` times) until both regions hold at least one
            whole window (partial blocks at the far edges may be too small).

    With at least two blocks, both regions get at least one block.
    """
    nby, nbx = -(-height // block), -(-width // block)
    n = nby * nbx
    rng = np.random.default_rng(seed)
    n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    elif n < 2:
        n_val = 0
    for _ in range(max(1, tries)):
        chosen = np.zeros(n, bool)
        chosen[rng.permutation(n)[:n_val]] = True
        val = np.repeat(np.repeat(chosen.reshape(nby, nbx), block, axis=0), block, axis=1)[:height, :width]
        if window is None or n_val == 0 or (len(window_positions(val, window)) and len(window_positions(~val, window))):
            return val
    return val


def window_positions(region: np.ndarray, window: int) -> np.ndarray:
    """Top-left ``(row, col)`` of every window whose in-scene pixels all lie in ``region``.

    Positions may be negative or extend past the far edge when the scene is smaller than a window
    (the window is then padded). Returns an ``(n, 2)`` int64 array (empty when none fits).
    """
    h, w = region.shape
    rows = np.arange(min(0, h - window), max(0, h - window) + 1)
    cols = np.arange(min(0, w - window), max(0, w - window) + 1)
    forbidden = (~region).astype(np.int64)
    sat = np.zeros((h + 1, w + 1), np.int64)
    sat[1:, 1:] = forbidden.cumsum(0).cumsum(1)
    r0 = np.clip(rows, 0, h)[:, None]
    r1 = np.clip(rows + window, 0, h)[:, None]
    c0 = np.clip(cols, 0, w)[None, :]
    c1 = np.clip(cols + window, 0, w)[None, :]
    bad = sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]
    rr, cc = np.nonzero(bad == 0)
    return np.stack([rows[rr], cols[cc]], axis=1).astype(np.int64)


def window_sums(values: np.ndarray, positions: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values`` (H, W) inside each window at ``positions`` (clipped to the scene)."""
    h, w = values.shape
    sat = np.zeros((h + 1, w + 1), np.float64)
    sat[1:, 1:] = values.astype(np.float64).cumsum(0).cumsum(1)
    r0 = np.clip(positions[:, 0], 0, h)
    r1 = np.clip(positions[:, 0] + window, 0, h)
    c0 = np.clip(positions[:, 1], 0, w)
    c1 = np.clip(positions[:, 1] + window, 0, w)
    return sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]
