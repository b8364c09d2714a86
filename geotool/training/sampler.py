"""Training scenes read window by window, and the reproducible random-window sampler both training commands use.

A scene is anything with ``region(split)``, ``positions(split, window)`` (a sized, indexable sequence of
``(row, col)``) and ``crop(row, col, window, ignore_index) -> (image, target, valid)``:

- :class:`TrainScene` (segmentation): pixels and labels read lazily through :mod:`geotool.io.windows`
  (a bounded block cache per process), the split kept on its block grid; memory does not grow with the
  scene's pixels.
- :class:`ArrayScene`: the same from arrays in memory (notebooks, tests).
- :class:`geotool.nir.data.PairedScene` (NIR; scaled arrays in memory, sampled with the ``min_valid`` rule).

:class:`TrainScene` is also what other components (e.g. an object bank for object-based augmentation) use
to see exactly what training saw: its reader, its own label features and its training blocks.
A :class:`SampleTransform` is the hook through which such a component changes training samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np
from rasterio.windows import Window

from geotool.labels import CLASS_NODATA
from geotool.training.split import BlockPositions, expand_blocks, window_positions, window_sums


class SampleTransform(Protocol):
    """A change to one training sample in raw units, applied before normalisation (e.g. object-based
    augmentation). It never sees validation windows.

    ``(image (C, H, W) float32, mask (H, W) int64, valid (H, W) bool, rng) -> (image, mask)``; a transform
    with a true ``wants_scene`` attribute is also given ``scene=`` (the index of the window's scene in the
    dataset). Plain functions of the first four arguments qualify.
    """

    def __call__(self, image: np.ndarray, mask: np.ndarray, valid: np.ndarray, rng: np.random.Generator,
                 **kwargs: Any) -> tuple[np.ndarray, np.ndarray]: ...


class BlockRegion:
    """A block-grid mask seen as an ``(H, W)`` pixel mask: ``region[r0:r1, c0:c1]`` expands only that slice."""

    def __init__(self, blocks: np.ndarray, block: int, height: int, width: int) -> None:
        self.blocks, self.block, self.shape = blocks, block, (height, width)

    def __getitem__(self, key) -> np.ndarray:
        rs, cs = key
        r0, r1, _ = rs.indices(self.shape[0])
        c0, c1, _ = cs.indices(self.shape[1])
        rows = np.arange(r0, r1) // self.block
        cols = np.arange(c0, c1) // self.block
        return self.blocks[rows[:, None], cols[None, :]]

    def any(self) -> bool:
        return bool(self.blocks.any())


@dataclass
class TrainScene:
    """One training scene, read window by window.

    Attributes:
        paths: the raster file(s) of the scene (one stack).
        bands: selected bands (1-based indices or descriptions).
        reader: :class:`geotool.io.windows.RasterWindows` of the image (raw units).
        labels_reader: :class:`~geotool.io.windows.VectorWindows` of the scene's own label polygons, or
            ``RasterWindows`` of a mask raster on the image grid.
        val_blocks: ``(nby, nbx)`` bool, True for validation blocks of ``block`` pixels.
        block: split block side, pixels.
        labels: the scene's own label features (GeoDataFrame in the raster CRS, class id in
            :data:`geotool.labels.CLASS_COLUMN`), or None when labels come from a mask raster.
        label_path: the label file (vector or mask raster).
        grid: the raster :class:`~geotool.io.raster.Grid`.
        ignore_index: label of nodata and unlabelled pixels.
        positive_cells: ``(n, 2)`` cells of ``cell`` pixels (row, col of the cell grid) that may hold a
            labelled pixel of a class > 0 (each draw checks the labels); used for positive-balanced windows.
        cell: side of those cells, pixels (divides ``block``).
    """

    paths: list[str]
    bands: list[Any]
    reader: Any
    labels_reader: Any
    val_blocks: np.ndarray
    block: int
    labels: Any = None
    label_path: Optional[str] = None
    grid: Any = None
    ignore_index: int = CLASS_NODATA
    positive_cells: Optional[np.ndarray] = None
    cell: int = 32
    _positions: dict = field(default_factory=dict, repr=False)

    # -- regions -----------------------------------------------------------------------------

    def blocks(self, split: str) -> np.ndarray:
        """``(nby, nbx)`` bool blocks of the ``"train"`` or ``"val"`` region."""
        return ~self.val_blocks if split == "train" else self.val_blocks

    def set_val_blocks(self, blocks: np.ndarray) -> None:
        """Replace the split (e.g. a whole validation scene: all True)."""
        self.val_blocks = blocks
        self._positions.clear()

    def region_view(self, split: str) -> BlockRegion:
        """The region as a lazily expanded pixel mask (slicing expands only the slice)."""
        return BlockRegion(self.blocks(split), self.block, self.grid.height, self.grid.width)

    def region(self, split: str) -> np.ndarray:
        """``(H, W)`` bool pixel mask of the region (one byte a pixel: tests and evaluation, not training)."""
        return expand_blocks(self.blocks(split), self.block, self.grid.height, self.grid.width)

    @property
    def val_region(self) -> np.ndarray:
        """``(H, W)`` bool, True inside validation blocks (see :meth:`region`)."""
        return self.region("val")

    @property
    def train_region(self) -> np.ndarray:
        """``(H, W)`` bool, True inside training blocks (see :meth:`region`)."""
        return self.region("train")

    def positions(self, split: str, window: int) -> BlockPositions:
        """Window top-left positions wholly inside the region (an indexable sequence; cached)."""
        key = (split, window)
        if key not in self._positions:
            self._positions[key] = BlockPositions(self.blocks(split), self.block, self.grid.height, self.grid.width, window)
        return self._positions[key]

    def lattice(self, split: str, window: int) -> list[tuple[int, int]]:
        """Non-overlapping window positions in ``split``: from each block's corner in steps of ``window``,
        taken greedily in raster order (validation windows)."""
        pos = self.positions(split, window)
        if not len(pos):
            return []

        def starts(n: int, lo: int, hi: int) -> list[int]:
            cand = {b + k * window for b in range(0, max(n, 1), self.block) for k in range(self.block // window + 1)}
            return sorted(v for v in cand | {lo} if lo <= v <= hi)

        rows, cols = starts(self.grid.height, *pos.row_range()), starts(self.grid.width, *pos.col_range())
        taken: list[tuple[int, int]] = []
        for r in rows:
            for c in cols:
                if pos.contains(r, c) and all(abs(r - a) >= window or abs(c - b) >= window for a, b in taken):
                    taken.append((r, c))
        return taken

    # -- pixels ------------------------------------------------------------------------------

    def read(self, row: int, col: int, height: int, width: int, ignore_index: int | None = None):
        """``(image (C,h,w) float32, target (h,w) int64, valid (h,w) bool)`` of a window, padded past the
        edges: raw units, 0 where invalid; target ``ignore_index`` where invalid or unlabelled."""
        ignore = self.ignore_index if ignore_index is None else ignore_index
        window = Window(col, row, width, height)
        img, val = self.reader.read(window, dtype=np.float32)
        img[:, ~val] = 0.0
        lab = self.labels_reader.read(window)
        if isinstance(lab, tuple):  # a mask raster: its own nodata is unlabelled
            lab, lab_valid = lab
            tgt = lab[0].astype(np.int64)
            tgt[~lab_valid] = ignore
        else:
            tgt = lab.astype(np.int64)
        tgt[~val] = ignore
        return img, tgt, val

    def crop(self, row: int, col: int, window: int, ignore_index: int | None = None):
        """``(image (C,w,w), target (w,w), valid (w,w))`` at ``(row, col)``; see :meth:`read`."""
        return self.read(row, col, window, window, ignore_index)

    def pixels(self, row: int, col: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image (C,w,w) float32, valid (w,w))`` at ``(row, col)`` without labels (raw units)."""
        img, val = self.reader.read(Window(col, row, window, window), dtype=np.float32)
        return img, val

    @property
    def image(self) -> np.ndarray:
        """The whole scene ``(C, H, W)`` float32 (reads it all: evaluation scripts and tests only)."""
        return self.read(0, 0, self.grid.height, self.grid.width)[0]

    @property
    def target(self) -> np.ndarray:
        """The whole ``(H, W)`` int64 labels (reads the whole scene: evaluation scripts and tests only)."""
        return self.read(0, 0, self.grid.height, self.grid.width)[1]

    @property
    def valid(self) -> np.ndarray:
        """The whole ``(H, W)`` validity (reads the whole scene: evaluation scripts and tests only)."""
        return self.reader.read(dtype=None)[1]

    # -- positive-balanced windows -------------------------------------------------------------

    def _cells(self, split: str) -> np.ndarray:
        key = ("cells", split)
        if key not in self._positions:
            cells = self.positive_cells if self.positive_cells is not None else np.zeros((0, 2), np.int64)
            blocks = self.blocks(split)
            inside = blocks[cells[:, 0] * self.cell // self.block, cells[:, 1] * self.cell // self.block] if len(cells) else []
            self._positions[key] = cells[np.asarray(inside, bool)] if len(cells) else cells
        return self._positions[key]

    def has_positives(self, split: str) -> bool:
        """Whether some cell of the region may hold a pixel of a class > 0."""
        return bool(len(self._cells(split)))

    def _cell_sums(self) -> np.ndarray:
        """Summed-area table of the positive cells (``(ny + 1, nx + 1)`` int32, cached)."""
        if "sat" not in self._positions:
            ny, nx = -(-self.grid.height // self.cell), -(-self.grid.width // self.cell)
            grid = np.zeros((ny, nx), np.int32)
            cells = self.positive_cells if self.positive_cells is not None else np.zeros((0, 2), np.int64)
            grid[cells[:, 0], cells[:, 1]] = 1
            sat = np.zeros((ny + 1, nx + 1), np.int32)
            sat[1:, 1:] = grid.cumsum(0).cumsum(1)
            self._positions["sat"] = sat
        return self._positions["sat"]

    def _may_hold_positive(self, row: int, col: int, window: int) -> bool:
        sat, c = self._cell_sums(), self.cell
        r0, r1 = max(row, 0) // c, (min(row + window, self.grid.height) - 1) // c + 1
        c0, c1 = max(col, 0) // c, (min(col + window, self.grid.width) - 1) // c + 1
        return bool(sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0])

    def _holds_positive(self, row: int, col: int, height: int, width: int, ignore: int) -> np.ndarray:
        _, tgt, _ = self.read(row, col, height, width, ignore)
        return (tgt > 0) & (tgt != ignore)

    def positive_window(self, split: str, window: int, rng: np.random.Generator, ignore_index: int | None = None,
                        tries: int = 32, checks: int = 4) -> tuple[int, int] | None:
        """A window position in ``split`` holding at least one labelled pixel of a class > 0, or None.

        First by rejection, uniform over such windows: up to ``tries`` uniform positions, skipping those whose
        cells hold no foreground, reading the labels of at most ``checks`` of them. When labels are sparse and
        that fails, a foreground pixel is drawn (a cell, then a pixel in it) and a position uniformly among
        the region's windows containing it.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        cells, pos = self._cells(split), self.positions(split, window)
        if not len(cells) or not len(pos):
            return None
        for _ in range(tries):
            row, col = pos[int(rng.integers(len(pos)))]
            if self._may_hold_positive(row, col, window):
                if self._holds_positive(row, col, window, window, ignore).any():
                    return row, col
                checks -= 1
                if checks <= 0:
                    break
        for _ in range(tries):
            cy, cx = cells[int(rng.integers(len(cells)))]
            rr, cc = np.nonzero(self._holds_positive(int(cy) * self.cell, int(cx) * self.cell, self.cell, self.cell, ignore))
            if not len(rr):
                continue
            j = int(rng.integers(len(rr)))
            py, px = int(cy) * self.cell + int(rr[j]), int(cx) * self.cell + int(cc[j])
            found = pos.sample_within(py - window + 1, py, px - window + 1, px, rng)
            if found is not None:
                return found
        return None

    def label_polygons(self):
        """The scene's labelled objects as polygons in the raster CRS with their class in ``CLASS_COLUMN``:
        the vector features, or the regions of a mask raster (vectorized strip by strip, its nodata and
        ``ignore_index`` skipped)."""
        from geotool.labels import CLASS_COLUMN

        if self.labels is not None:
            return self.labels
        from geotool.io.vector import vectorize_source

        gdf = vectorize_source(self.labels_reader.source(), nodata=self.ignore_index)
        return gdf.rename(columns={"class_id": CLASS_COLUMN})


@dataclass
class ArrayScene:
    """A scene held in memory (notebooks, tests): ``image (C, H, W)`` float32 raw units, ``target (H, W)``
    class ids, ``valid (H, W)`` bool and ``val_region (H, W)`` bool (True = validation)."""

    image: np.ndarray
    target: np.ndarray
    valid: np.ndarray
    val_region: np.ndarray
    _positions: dict = field(default_factory=dict, repr=False)

    @property
    def train_region(self) -> np.ndarray:
        return ~self.val_region

    def region(self, split: str) -> np.ndarray:
        return self.train_region if split == "train" else self.val_region

    def positions(self, split: str, window: int) -> np.ndarray:
        key = (split, window)
        if key not in self._positions:
            region = self.region(split)
            self._positions[key] = window_positions(region, window) if region.any() else np.zeros((0, 2), np.int64)
        return self._positions[key]

    def crop(self, row: int, col: int, window: int, ignore_index: int = CLASS_NODATA):
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

    def pixels(self, row: int, col: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        img, _, val = self.crop(row, col, window)
        return img, val

    def _positive(self, split: str, window: int, ignore_index: int) -> np.ndarray:
        key = ("positive", split, window)
        if key not in self._positions:
            p = self.positions(split, window)
            positive = ((self.target > 0) & (self.target != ignore_index) & self.valid).astype(np.float32)
            self._positions[key] = p[window_sums(positive, p, window) > 0] if len(p) else p
        return self._positions[key]

    def has_positives(self, split: str) -> bool:
        return bool(((self.target > 0) & self.region(split)).any())

    def positive_window(self, split: str, window: int, rng: np.random.Generator, ignore_index: int = CLASS_NODATA):
        p = self._positive(split, window, ignore_index)
        if not len(p):
            return None
        r, c = p[int(rng.integers(len(p)))]
        return int(r), int(c)


Item = Callable[..., tuple]


class RandomWindowDataset:
    """Random windows from the training (or validation) regions of several scenes; a torch map Dataset.

    The one training sampler of both training commands. Item ``i`` of epoch ``e`` is drawn from
    ``np.random.default_rng([seed, e, i])``, so a run is reproducible whatever the number of workers. Set
    :attr:`epoch` at each epoch start for fresh windows. Two rules place a window (both keep every window
    wholly inside the region, so none straddles the split):

    - positions (default, segmentation): uniform over every allowed position of :meth:`TrainScene.positions`,
      scenes weighted by their number of positions; optionally positive-balanced (a scene's
      ``positive_window``: a window holding a pixel of a class > 0).
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
        sample_transform: optional :class:`SampleTransform` on raw units, applied before anything else
            (training only; e.g. object-based augmentation).
        normalize: optional ``image -> image`` (raw units -> model units), after ``sample_transform``.
        augment: optional ``(image, mask, valid, rng) -> (image, mask, valid)`` on normalised windows
            (e.g. albumentations), applied last.
        min_valid: use the rejection rule above with this valid share (0..1).
        item: optional ``(image, target, valid, rng) -> sample`` replacing the segmentation pipeline
            (sample_transform, normalize, augment, invalid pixels to 0) for another task's samples.
    """

    def __init__(self, scenes: list, window: int, length: int, seed: int, split: str = "train",
                 positive_fraction: float = 0.0, ignore_index: int = CLASS_NODATA,
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
            self.pos = []
        else:
            self.pos = [s.positions(split, window) for s in scenes]
            weights = np.array([len(p) for p in self.pos], np.float64)
        if weights.sum() == 0:
            raise ValueError(f"no {window}-pixel window fits inside the {split} region of any scene")
        self.weights = weights / weights.sum()
        self.has_positive = [min_valid is None and positive_fraction > 0 and len(p) > 0 and s.has_positives(split)
                             for s, p in zip(scenes, self.pos or [()] * len(scenes))]

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
        if self.positive_fraction > 0 and rng.random() < self.positive_fraction:
            has = [j for j, h in enumerate(self.has_positive) if h]
            if has:
                k = k if self.has_positive[k] else has[int(rng.integers(len(has)))]
                found = self.scenes[k].positive_window(self.split, self.window, rng, self.ignore_index)
                if found is not None:
                    return k, found[0], found[1]
        cands = self.pos[k]
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


def grid_windows(scenes: list, window: int, split: str, max_windows: int, seed: int,
                 min_valid: float | None = None, spread: str = "random") -> list[tuple[int, int, int]]:
    """A fixed set of non-overlapping ``(scene, row, col)`` windows in ``split`` (for validation).

    Windows are picked greedily in raster order (for a rectangular region: the window lattice from its
    top-left corner; for a :class:`TrainScene`: :meth:`TrainScene.lattice`); with ``min_valid`` those less valid than that share are then dropped. When more than
    ``max_windows`` remain, ``spread="random"`` keeps a seeded random subset (segmentation) and
    ``"even"`` every n-th window in order (NIR).
    """
    items = []
    for k, s in enumerate(scenes):
        if hasattr(s, "lattice"):  # a TrainScene: from its block grid, no pixel mask
            taken = s.lattice(split, window)
        elif s.region(split).any():
            taken = _greedy_lattice(s, split, window)
        else:
            continue
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
