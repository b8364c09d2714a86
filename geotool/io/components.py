"""Connected components of a raster streamed in horizontal strips of rows.

A scene is fed top to bottom, one strip (a few hundred rows, the full width) at a time. Each strip is
labelled with ``scipy.ndimage.label`` (4-connectivity); every piece gets a provisional id, unique over
the whole scene; pieces touching across a strip boundary (same column in the last row of one strip and
the first row of the next, both foreground, same class) are merged with a union-find. Memory is the
current strip plus arrays with one entry per provisional id, never the whole scene.

Callers may accumulate their own per-strip statistics keyed by provisional id (:meth:`StripLabels.ids`,
:func:`overlap_counts`) and map them to components with the array returned by
:meth:`StripComponents.resolve`. Callers that must not wait for the end use :meth:`StripComponents.roots`
and :meth:`StripComponents.open_roots` after each strip: a component whose root is not open can no
longer grow, so it may be finished and dropped right away.

Example:
    comps = StripComponents()
    for window in strip_windows(grid, rows=512):
        data, valid = src.read(window)
        comps.add(valid & (data[0] > 0))
    final = comps.resolve()  # provisional id -> component id (1..comps.n)
    comps.counts  # pixels per component
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
from rasterio.windows import Window

from geotool.io.raster import Grid

STRIP_ROWS = 512
_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def strip_windows(grid: Grid, rows: int = STRIP_ROWS) -> Iterator[Window]:
    """Full-width windows of ``rows`` rows (the last one shorter) covering ``grid`` top to bottom."""
    if rows < 1:
        raise ValueError(f"strip height must be at least 1 row, not {rows}")
    for r in range(0, grid.height, rows):
        yield Window(0, r, grid.width, min(rows, grid.height - r))


class StripLabels(NamedTuple):
    """The labels of one strip: ``local`` ``(rows, cols)`` int32, 0 = background, 1..n per piece.

    The provisional (scene-wide) id of local label ``i > 0`` is ``offset + i``.
    """

    local: np.ndarray
    offset: int
    n: int

    def ids(self, where: np.ndarray | None = None) -> np.ndarray:
        """Provisional ids (int64, 0 = background) of the whole strip, or of the pixels ``where`` is True."""
        local = self.local if where is None else self.local[where]
        return np.where(local > 0, local.astype(np.int64) + self.offset, 0)


class StripComponents:
    """Accumulates 4-connected components strip by strip, with pixel counts and (optionally) classes.

    Feed strips in order with :meth:`add`; then :meth:`resolve` maps every provisional id to its
    component. Without classes, component ids follow the raster order of each component's first
    pixel, exactly as ``scipy.ndimage.label`` numbers them on the whole array.
    """

    def __init__(self) -> None:
        self._parent = np.zeros(1024, np.int64)  # union-find; the root is the smallest id of a component
        self._count = np.zeros(1024, np.int64)  # pixels per provisional id
        self._cls = np.zeros(1024, np.int64)  # class per provisional id (0 without classes)
        self.n_provisional = 0
        self.rows = 0  # rows consumed so far
        self._width: int | None = None
        self._last: np.ndarray | None = None  # provisional ids of the last row fed
        self._by_class: bool | None = None
        self.n = 0
        self.counts = np.zeros(1, np.int64)
        self.classes = np.zeros(1, np.int64)

    def add(self, foreground: np.ndarray, classes: np.ndarray | None = None) -> StripLabels:
        """Label the next strip and merge it with the strip above.

        Args:
            foreground: ``(rows, cols)`` bool, the pixels that belong to some component.
            classes: ``(rows, cols)`` integer classes; when given, touching pixels of different classes
                belong to different components (give it for every strip or for none).

        Returns:
            The strip's labels; provisional ids are valid until the end, :meth:`resolve` maps them.
        """
        foreground = np.asarray(foreground, bool)
        if foreground.ndim != 2:
            raise ValueError(f"a strip must be (rows, cols), not {foreground.shape}")
        if self._width is None:
            self._width, self._by_class = foreground.shape[1], classes is not None
        if foreground.shape[1] != self._width or (classes is not None) != self._by_class:
            raise ValueError("every strip must have the same width and either always or never classes")
        local, n, piece_cls = _label(foreground, classes)
        offset = self.n_provisional
        self._grow(offset + n + 1)
        ids = slice(offset + 1, offset + n + 1)
        self._parent[ids] = np.arange(offset + 1, offset + n + 1)
        self._count[ids] = np.bincount(local.ravel(), minlength=n + 1)[1:]
        self._cls[ids] = piece_cls
        self.n_provisional += n
        strip = StripLabels(local, offset, n)
        if len(local):
            if self._last is not None:
                self._merge(self._last, _row_ids(local[0], offset))
            self._last = _row_ids(local[-1], offset)
            self.rows += len(local)
        return strip

    def _grow(self, size: int) -> None:
        if size <= len(self._parent):
            return
        new = max(size, 2 * len(self._parent))
        for name in ("_parent", "_count", "_cls"):
            old = getattr(self, name)
            grown = np.zeros(new, np.int64)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def _merge(self, above: np.ndarray, below: np.ndarray) -> None:
        """Union the ids that touch vertically across the boundary (same column, same class)."""
        touch = (above > 0) & (below > 0)
        a, b = above[touch], below[touch]
        if self._by_class:
            same = self._cls[a] == self._cls[b]
            a, b = a[same], b[same]
        if not len(a):
            return
        base = self.n_provisional + 1
        keys = np.unique(a * base + b)
        for x, y in zip((keys // base).tolist(), (keys % base).tolist()):
            rx, ry = self._find(x), self._find(y)
            if rx != ry:
                self._parent[max(rx, ry)] = min(rx, ry)

    def roots(self, ids: np.ndarray) -> np.ndarray:
        """Current root of each provisional id (int64, 0 for 0): the smallest id of its component so far.

        The root of a component that is not open (see :meth:`open_roots`) is final.
        """
        roots = self._parent[np.asarray(ids, np.int64)]
        while True:  # pointer jumping
            up = self._parent[roots]
            if np.array_equal(up, roots):
                return roots
            roots = up

    def open_roots(self) -> np.ndarray:
        """Sorted roots of the components touching the last row fed: only these can grow in the next strip."""
        if self._last is None:
            return np.zeros(0, np.int64)
        return np.unique(self.roots(self._last[self._last > 0]))

    def classes_of(self, ids: np.ndarray) -> np.ndarray:
        """Class (int64; 0 without classes) of each provisional id."""
        return self._cls[np.asarray(ids, np.int64)]

    def _find(self, i: int) -> int:
        parent = self._parent
        root = i
        while parent[root] != root:
            root = int(parent[root])
        while parent[i] != root:  # path compression
            parent[i], i = root, int(parent[i])
        return root

    def resolve(self) -> np.ndarray:
        """Map provisional ids to components; sets :attr:`n`, :attr:`counts` and :attr:`classes`.

        Returns:
            int64 array of length ``n_provisional + 1``: component id (1..n) of every provisional id,
            0 for 0 (background). ``counts[c]`` is the size of component ``c`` in pixels and
            ``classes[c]`` its class (index 0 unused).
        """
        size = self.n_provisional + 1
        roots = self.roots(np.arange(size))
        is_root = roots == np.arange(size)
        is_root[0] = False
        final = np.cumsum(is_root)[roots]  # roots in increasing id order -> 1..n
        final[0] = 0
        self.n = int(is_root.sum())
        self.counts = np.bincount(final, weights=self._count[:size], minlength=self.n + 1).astype(np.int64)
        self.counts[0] = 0
        self.classes = np.zeros(self.n + 1, np.int64)
        self.classes[final[1:]] = self._cls[1:size]
        return final


def _label(foreground: np.ndarray, classes: np.ndarray | None) -> tuple[np.ndarray, int, np.ndarray]:
    """4-connected labels of one strip (int32), their number and the class of each label."""
    from scipy import ndimage

    if classes is None:
        local, n = ndimage.label(foreground, _FOUR)
        return local.astype(np.int32, copy=False), int(n), np.zeros(n, np.int64)
    local = np.zeros(foreground.shape, np.int32)
    n, piece_cls = 0, []
    for c in np.unique(classes[foreground]).tolist():
        part, k = ndimage.label(foreground & (classes == c), _FOUR)
        inside = part > 0
        local[inside] = part[inside] + n
        n += int(k)
        piece_cls.append(np.full(k, c, np.int64))
    return local, n, np.concatenate(piece_cls) if piece_cls else np.zeros(0, np.int64)


def _row_ids(row: np.ndarray, offset: int) -> np.ndarray:
    return np.where(row > 0, row.astype(np.int64) + offset, 0)


def overlap_counts(a: StripLabels, b: StripLabels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels shared by each pair of provisional ids of two labellings of the same strip.

    Returns:
        ``(ids_a, ids_b, pixels)``: int64 arrays, one entry per overlapping pair in this strip.
    """
    both = (a.local > 0) & (b.local > 0)
    base = b.n + 1
    keys, pixels = np.unique(a.local[both].astype(np.int64) * base + b.local[both], return_counts=True)
    return keys // base + a.offset, keys % base + b.offset, pixels.astype(np.int64)
