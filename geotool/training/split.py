"""Spatial block split: whole blocks of a scene go to training or validation, never single pixels.

A scene of ``height x width`` pixels is cut into square blocks of ``block`` pixels; a seeded random subset
holding about ``val_fraction`` of the blocks becomes the validation region, the rest the training region.
Windows are then drawn only at positions whose in-scene footprint lies wholly inside one region
(:func:`window_positions`), so no training window overlaps a validation pixel.
"""

from __future__ import annotations

import numpy as np


def split_blocks(height: int, width: int, block: int, val_fraction: float, seed: int,
                 window: int | None = None, tries: int = 64) -> np.ndarray:
    """The block split of a scene on its block grid: ``(ceil(height / block), ceil(width / block))`` bool,
    True = validation block. Needs only the scene's size, never its pixels.

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
        blocks = chosen.reshape(nby, nbx)
        if (window is None or n_val == 0
                or (len(BlockPositions(blocks, block, height, width, window))
                    and len(BlockPositions(~blocks, block, height, width, window)))):
            return blocks
    return blocks


def expand_blocks(blocks: np.ndarray, block: int, height: int, width: int) -> np.ndarray:
    """A block-grid mask as an ``(height, width)`` pixel mask (one byte a pixel: for tests and evaluation)."""
    return np.repeat(np.repeat(blocks, block, axis=0), block, axis=1)[:height, :width]


def block_split(height: int, width: int, block: int, val_fraction: float, seed: int,
                window: int | None = None, tries: int = 64) -> np.ndarray:
    """:func:`split_blocks` as an ``(height, width)`` pixel mask, True = validation."""
    return expand_blocks(split_blocks(height, width, block, val_fraction, seed, window, tries), block, height, width)


def _runs(height: int, block: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis: window starts grouped by the first and last block their in-scene footprint meets.

    Returns ``(start, count, first_block, last_block)`` per group; starts run from ``min(0, n - window)``
    to ``max(0, n - window)`` (a scene smaller than the window is padded).
    """
    pos = np.arange(min(0, height - window), max(0, height - window) + 1)
    first = np.clip(pos, 0, height - 1) // block
    last = (np.clip(pos + window, 1, height) - 1) // block
    change = np.r_[True, (first[1:] != first[:-1]) | (last[1:] != last[:-1])]
    starts = np.flatnonzero(change)
    counts = np.diff(np.r_[starts, len(pos)])
    return pos[starts], counts, first[starts], last[starts]


class BlockPositions:
    """Every top-left ``(row, col)`` of a window whose in-scene footprint lies wholly in a block region,
    as an indexable sequence that never lists them (a scene has about one position per pixel).

    Window starts along each axis fall into runs that meet the same blocks; a pair of runs is allowed
    when all its blocks are in the region. Item ``i`` is found by a search over the pairs' cumulative
    counts, so the positions are exactly those of :func:`window_positions` on the pixel mask (ordered
    run pair by run pair, not row-major).

    Args:
        blocks: ``(nby, nbx)`` bool block region (True = allowed).
        block: block side, pixels.
        height, width: scene size, pixels.
        window: window side, pixels.
    """

    def __init__(self, blocks: np.ndarray, block: int, height: int, width: int, window: int) -> None:
        self.window = window
        self.rows = _runs(height, block, window)
        self.cols = _runs(width, block, window)
        bad = np.zeros((blocks.shape[0] + 1, blocks.shape[1] + 1), np.int64)
        bad[1:, 1:] = (~blocks).astype(np.int64).cumsum(0).cumsum(1)
        _, _, ra, rb = self.rows
        _, _, ca, cb = self.cols
        r0, r1, c0, c1 = ra[:, None], rb[:, None] + 1, ca[None, :], cb[None, :] + 1
        allowed = (bad[r1, c1] - bad[r0, c1] - bad[r1, c0] + bad[r0, c0]) == 0
        self.allowed = allowed
        counts = np.where(allowed, self.rows[1][:, None] * self.cols[1][None, :], 0).ravel()
        self.cum = np.cumsum(counts)

    def __len__(self) -> int:
        return int(self.cum[-1]) if len(self.cum) else 0

    def __getitem__(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        pair = int(np.searchsorted(self.cum, i, side="right"))
        off = i - (int(self.cum[pair - 1]) if pair else 0)
        gi, gj = divmod(pair, len(self.cols[0]))
        ncol = int(self.cols[1][gj])
        return int(self.rows[0][gi]) + off // ncol, int(self.cols[0][gj]) + off % ncol

    def contains(self, row: int, col: int) -> bool:
        """Whether ``(row, col)`` is one of the positions."""
        gi = int(np.searchsorted(self.rows[0], row, side="right")) - 1
        gj = int(np.searchsorted(self.cols[0], col, side="right")) - 1
        if gi < 0 or gj < 0 or row >= self.rows[0][gi] + self.rows[1][gi] or col >= self.cols[0][gj] + self.cols[1][gj]:
            return False
        return bool(self.allowed[gi, gj])

    def sample_within(self, r0: int, r1: int, c0: int, c1: int, rng: np.random.Generator) -> tuple[int, int] | None:
        """A position drawn uniformly among those with row in ``[r0, r1]`` and column in ``[c0, c1]``
        (inclusive), or None when there is none."""
        def overlap(runs, lo, hi):
            start, count = runs[0], runs[1]
            a, b = np.maximum(start, lo), np.minimum(start + count - 1, hi)
            return a, np.maximum(b - a + 1, 0)

        ra, rn = overlap(self.rows, r0, r1)
        ca, cn = overlap(self.cols, c0, c1)
        weights = np.where(self.allowed, rn[:, None] * cn[None, :], 0).ravel().astype(np.float64)
        total = weights.sum()
        if total == 0:
            return None
        pair = int(np.searchsorted(np.cumsum(weights), rng.random() * total, side="right"))
        gi, gj = divmod(min(pair, len(weights) - 1), len(cn))
        return int(ra[gi] + rng.integers(rn[gi])), int(ca[gj] + rng.integers(cn[gj]))

    def row_range(self) -> tuple[int, int]:
        """First and last window row start of the scene (inclusive)."""
        return int(self.rows[0][0]), int(self.rows[0][-1] + self.rows[1][-1] - 1)

    def col_range(self) -> tuple[int, int]:
        """First and last window column start of the scene (inclusive)."""
        return int(self.cols[0][0]), int(self.cols[0][-1] + self.cols[1][-1] - 1)

    def to_array(self) -> np.ndarray:
        """All positions as ``(n, 2)`` int64 (small scenes and tests only)."""
        return np.array([self[i] for i in range(len(self))], np.int64).reshape(-1, 2)


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
