"""Scenes in memory and the reproducible random-window sampler over them that both training commands use.

A scene is anything with ``valid`` ((H, W) bool), ``region(split)``, ``positions(split, window)`` and
``crop(row, col, window, ignore_index) -> (image, target, valid)``: :class:`TrainScene` (segmentation) or
:class:`geotool.nir.data.PairedScene`.

:class:`TrainScene` is the record other components (e.g. an object bank for object-based augmentation)
use to see exactly what training saw: the raster paths and bands, the label source, the pixel arrays and
the train / validation regions. Build an object bank from ``scene.train_region`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from geotool.training.split import window_positions, window_sums

SampleTransform = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass
class TrainScene:
    """One training scene held in memory.

    Attributes:
        paths: the raster file(s) read (one RasterSource).
        bands: selected bands (1-based indices or descriptions).
        image: ``(C, H, W)`` float32 raw pixel values, 0 where invalid.
        target: ``(H, W)`` integer labels (class ids; ``ignore_index`` where nodata / unlabelled); uint8 when they
            fit, :meth:`crop` returns int64 windows either way.
        valid: ``(H, W)`` bool, pixels with data in every band.
        val_region: ``(H, W)`` bool, True inside validation blocks; ``train_region`` is its complement.
        labels: the label GeoDataFrame in the raster CRS with each polygon's class id in ``_class``, or None
            when labels came from a mask raster.
        label_path: the label file (vector or mask raster).
        grid: the raster :class:`~geotool.io.raster.Grid`.
    """

    paths: list[str]
    bands: list[Any]
    image: np.ndarray
    target: np.ndarray
    valid: np.ndarray
    val_region: np.ndarray
    labels: Any = None
    label_path: Optional[str] = None
    grid: Any = None
    _positions: dict = field(default_factory=dict, repr=False)

    @property
    def train_region(self) -> np.ndarray:
        """``(H, W)`` bool, True inside training blocks."""
        return ~self.val_region

    def region(self, split: str) -> np.ndarray:
        """The ``"train"`` or ``"val"`` region."""
        return self.train_region if split == "train" else self.val_region

    def positions(self, split: str, window: int) -> np.ndarray:
        """Window top-left positions wholly inside the ``"train"`` or ``"val"`` region (cached)."""
        key = (split, window)
        if key not in self._positions:
            region = self.region(split)
            self._positions[key] = window_positions(region, window) if region.any() else np.zeros((0, 2), np.int64)
        return self._positions[key]

    def crop(self, row: int, col: int, window: int, ignore_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image (C,w,w), target (w,w), valid (w,w))`` at ``(row, col)``, padded past the edges."""
        c, h, w = self.image.shape
        img = np.zeros((c, window, window), np.float32)
        tgt = np.full((window, window), ignore_index, np.int64)
        val = np.zeros((window, window), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + window, h), min(col + window, w)
        if r1 > r0 and c1 > c0:
            dst = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            img[(slice(None),) + dst] = self.image[:, r0:r1, c0:c1]
            tgt[dst] = self.target[r0:r1, c0:c1]
            val[dst] = self.valid[r0:r1, c0:c1]
        tgt[~val] = ignore_index
        return img, tgt, val


Item = Callable[..., tuple]


class RandomWindowDataset:
    """Random windows from the training (or validation) regions of several scenes; a torch map Dataset.

    The one training sampler of both training commands. Item ``i`` of epoch ``e`` is drawn from
    ``np.random.default_rng([seed, e, i])``, so a run is reproducible whatever the number of workers. Set
    :attr:`epoch` at each epoch start for fresh windows. Two rules place a window (both keep every window
    wholly inside the region, so none straddles the split):

    - positions (default, segmentation): uniform over every allowed position of :meth:`TrainScene.positions`,
      scenes weighted by their number of positions; optionally positive-balanced.
    - ``min_valid`` (NIR): scenes weighted by their valid pixels in the region; row and column uniform over
      the region's bounding box (a rectangle for NIR's west/east split), redrawn (up to 50 times) until at
      least ``min_valid`` of the window is valid. It needs no position list, which for large scenes and
      every-pixel positions would be larger than the scene.

    Args:
        scenes: the scenes.
        window: window side, pixels.
        length: windows per epoch.
        seed: random seed.
        split: ``"train"`` or ``"val"``.
        positive_fraction: share of windows forced to hold at least one pixel of a class > 0
            (positive-balanced mode; 0 = uniform over positions).
        ignore_index: label value for nodata/padding.
        sample_transform: optional ``(image, mask, valid, rng) -> (image, mask)`` on raw units, applied
            before anything else (training only; e.g. object-based augmentation). When it has a true
            ``wants_scene`` attribute it is also given ``scene=`` (the index of the window's scene).
        normalize: optional ``image -> image`` (raw units -> model units), after ``sample_transform``.
        augment: optional ``(image, mask, valid, rng) -> (image, mask, valid)`` on normalised windows
            (e.g. albumentations), applied last.
        min_valid: use the rejection rule above with this valid share (0..1).
        item: optional ``(image, target, valid, rng) -> sample`` replacing the segmentation pipeline
            (sample_transform, normalize, augment, invalid pixels to 0) for another task's samples.
    """

    def __init__(self, scenes: list[TrainScene], window: int, length: int, seed: int, split: str = "train",
                 positive_fraction: float = 0.0, ignore_index: int = 255,
                 sample_transform: SampleTransform | None = None, augment=None, normalize=None,
                 min_valid: float | None = None, item: Item | None = None) -> None:
        self.scenes, self.window, self.length, self.seed = scenes, window, length, seed
        self.split, self.ignore_index = split, ignore_index
        self.positive_fraction, self.min_valid, self.item = positive_fraction, min_valid, item
        self.sample_transform, self.augment, self.normalize = sample_transform, augment, normalize
        self.epoch = 0
        if min_valid is not None:
            self.boxes = [_bounding_box(s.region(split)) for s in scenes]
            weights = np.array([(s.valid & s.region(split)).sum() for s in scenes], np.float64)
            self.pos, self.pos_positive = [], []
        else:
            self.pos = [s.positions(split, window) for s in scenes]
            weights = np.array([len(p) for p in self.pos], np.float64)
        if weights.sum() == 0:
            raise ValueError(f"no {window}-pixel window fits inside the {split} region of any scene")
        self.weights = weights / weights.sum()
        if min_valid is None:
            self.pos_positive = []
            for s, p in zip(scenes, self.pos):
                if positive_fraction > 0 and len(p):
                    positive = ((s.target > 0) & (s.target != ignore_index)).astype(np.float32)
                    self.pos_positive.append(p[window_sums(positive, p, window) > 0])
                else:
                    self.pos_positive.append(np.zeros((0, 2), np.int64))

    def __len__(self) -> int:
        return self.length

    def _draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(scene, row, col)`` of one window."""
        if self.min_valid is not None:
            for _ in range(50):
                k = int(rng.choice(len(self.scenes), p=self.weights))
                r0, r1, c0, c1 = self.boxes[k]
                row = int(rng.integers(r0, r1 - self.window + 1))
                col = int(rng.integers(c0, c1 - self.window + 1))
                if self.scenes[k].valid[row : row + self.window, col : col + self.window].mean() >= self.min_valid:
                    break
            return k, row, col
        k = int(rng.choice(len(self.scenes), p=self.weights))
        cands = self.pos[k]
        if self.positive_fraction > 0 and rng.random() < self.positive_fraction:
            has = [j for j, p in enumerate(self.pos_positive) if len(p)]
            if has:
                k = has[int(rng.integers(len(has)))] if not len(self.pos_positive[k]) else k
                cands = self.pos_positive[k]
        row, col = cands[int(rng.integers(len(cands)))]
        return k, int(row), int(col)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        k, row, col = self._draw(rng)
        image, mask, valid = self.scenes[k].crop(row, col, self.window, self.ignore_index)
        if self.item is not None:
            return self.item(image, mask, valid, rng)
        if self.sample_transform is not None:
            if getattr(self.sample_transform, "wants_scene", False):
                image, mask = self.sample_transform(image, mask, valid, rng, scene=k)
            else:
                image, mask = self.sample_transform(image, mask, valid, rng)
            image, mask = np.asarray(image, np.float32), np.asarray(mask, np.int64)
        if self.normalize is not None:
            image = self.normalize(image)
        if self.augment is not None:
            image, mask, valid = self.augment(image, mask, valid, rng)
        image = np.where(valid[None], image, 0.0).astype(np.float32)
        return image, mask.astype(np.int64), valid


class FixedWindowDataset:
    """Windows at fixed ``(scene, row, col)`` positions (validation: no augmentation, no sample_transform).

    Args:
        scenes: the scenes.
        items: ``(scene, row, col)`` from :func:`grid_windows`.
        window: window side, pixels.
        ignore_index: label value for nodata/padding.
        item: ``(image, target, valid) -> sample``.
    """

    def __init__(self, scenes, items: list[tuple[int, int, int]], window: int, ignore_index: int, item: Callable[..., tuple]) -> None:
        self.scenes, self.items, self.window, self.ignore_index, self.item = scenes, items, window, ignore_index, item

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        k, r, c = self.items[i]
        return self.item(*self.scenes[k].crop(r, c, self.window, self.ignore_index))


def _bounding_box(region: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (end exclusive) of the True pixels of ``region``."""
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    if not len(rows):
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def grid_windows(scenes: list[TrainScene], window: int, split: str, max_windows: int, seed: int,
                 min_valid: float | None = None, spread: str = "random") -> list[tuple[int, int, int]]:
    """A fixed set of non-overlapping ``(scene, row, col)`` windows in ``split`` (for validation).

    Windows are picked greedily in raster order (for a rectangular region: the window lattice from its
    top-left corner); with ``min_valid`` those less valid than that share are then dropped. When more than
    ``max_windows`` remain, ``spread="random"`` keeps a seeded random subset (segmentation) and
    ``"even"`` every n-th window in order (NIR).
    """
    items = []
    for k, s in enumerate(scenes):
        if not s.region(split).any():
            continue
        taken = _greedy_lattice(s, split, window)
        if min_valid is not None:
            taken = [(r, c) for r, c in taken if s.valid[max(r, 0) : r + window, max(c, 0) : c + window].mean() >= min_valid]
        items += [(k, r, c) for r, c in taken]
    if spread == "even":
        step = max(1, len(items) // max(max_windows, 1))
        return items[::step][:max_windows]
    rng = np.random.default_rng(seed)
    if len(items) > max_windows:
        idx = np.sort(rng.choice(len(items), max_windows, replace=False))
        items = [items[i] for i in idx]
    return items


def _greedy_lattice(scene, split: str, window: int) -> list[tuple[int, int]]:
    """Non-overlapping window positions in ``split``, taken greedily in raster order."""
    r0, r1, c0, c1 = _bounding_box(scene.region(split))
    if r1 - r0 >= window and c1 - c0 >= window and scene.region(split)[r0:r1, c0:c1].all():
        # a rectangle the window fits in: the greedy pick is the lattice from its corner, found without
        # listing the positions (about one per pixel)
        return [(r, c) for r in range(r0, r1 - window + 1, window) for c in range(c0, c1 - window + 1, window)]
    p = scene.positions(split, window)
    taken: list[tuple[int, int]] = []
    for r, c in p[np.lexsort((p[:, 1], p[:, 0]))]:
        if all(abs(r - a) >= window or abs(c - b) >= window for a, b in taken):
            taken.append((int(r), int(c)))
    return taken
