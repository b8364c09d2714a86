"""Lazy window readers for training: rasters opened on demand, decoded blocks kept in a bounded cache.

Training draws random windows from hundreds of scenes, so no scene is held in memory. Each reader is a
small picklable value (paths, band selection, grid); pixels come from two per-process structures:

- an LRU of open datasets (at most :data:`MAX_OPEN`, across all scenes) so hundreds of scenes do not
  exhaust file handles; a DataLoader worker (fork or spawn) starts with an empty pool and reopens lazily;
- an LRU block cache bounded in bytes (``cache_mb`` per process) of decoded blocks of ``block`` pixels
  on a grid aligned with the raster's origin. A window is assembled from the blocks it touches, so
  overlapping random windows decode each block once. Blocks are kept in the file's dtype.

:class:`RasterWindows` reads image (or mask) rasters through that cache, all selected bands in one read;
:class:`VectorWindows` rasterizes label polygons per window on demand (only the polygons meeting it), which
costs about what reading the window's pixels does and keeps no per-pixel label array.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from rasterio.windows import Window

from geotool.io.raster import Grid

#: Most datasets open at once in one process, across every reader.
MAX_OPEN = 32
#: Default block cache per process, MB (2**20 bytes).
CACHE_MB = 512
#: Default cache block side, pixels (GeoTIFFs geotool writes are tiled in 256-px blocks).
BLOCK = 256


class _Pool:
    """Per-process LRU of open :class:`~geotool.io.raster.RasterSource` objects, keyed by reader."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.open: OrderedDict[tuple, Any] = OrderedDict()
        self.opened = 0  # datasets opened in this process (for tests and diagnostics)

    def get(self, key: tuple, factory):
        if self.pid != os.getpid():  # a forked worker: the parent's handles are not ours to use
            self.__init__()
        src = self.open.get(key)
        if src is not None:
            self.open.move_to_end(key)
            return src
        src = factory()
        self.opened += 1
        self.open[key] = src
        while len(self.open) > MAX_OPEN:
            _, old = self.open.popitem(last=False)
            old.close()
        return src

    def clear(self) -> None:
        while self.open:
            self.open.popitem()[1].close()


class BlockCache:
    """LRU of decoded blocks bounded in bytes (``limit`` bytes; the newest block is always kept)."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.items: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def get(self, key: tuple):
        item = self.items.get(key)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self.items.move_to_end(key)
        return item

    def put(self, key: tuple, item: tuple[np.ndarray, ...]) -> None:
        if key in self.items:
            return
        self.items[key] = item
        self.nbytes += sum(a.nbytes for a in item)
        while self.nbytes > self.limit and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.nbytes -= sum(a.nbytes for a in old)

    def clear(self) -> None:
        self.items.clear()
        self.nbytes = 0


_POOL = _Pool()
_CACHE: dict[int, BlockCache] = {}  # pid -> this process's cache


def pool() -> _Pool:
    """This process's pool of open datasets."""
    return _POOL


def block_cache(limit: int | None = None) -> BlockCache:
    """This process's block cache; ``limit`` (bytes) raises or lowers its bound when given."""
    pid = os.getpid()
    cache = _CACHE.get(pid)
    if cache is None:
        _CACHE.clear()  # a forked worker does not keep its parent's blocks
        cache = _CACHE[pid] = BlockCache(CACHE_MB * 2**20 if limit is None else limit)
    elif limit is not None and limit != cache.limit:
        cache.limit = int(limit)
    return cache


class RasterWindows:
    """Windows of one raster or aligned stack (:class:`~geotool.io.raster.RasterSource`), read lazily.

    Opening validates the files and reads their grid and bands once; the dataset then goes to the
    per-process pool. Picklable: a worker process reopens the files on its first read.

    Args:
        paths: GeoTIFF path(s) of one scene.
        bands: band selection (1-based indices or descriptions; default every non-alpha band).
        nodata: nodata override.
        block: cache block side, pixels.
        cache_mb: bound of this process's block cache, MB.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], bands: Sequence[int | str] | None = None,
                 nodata: float | None = None, block: int = BLOCK, cache_mb: float = CACHE_MB) -> None:
        self.paths = [str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        self.bands = list(bands) if bands is not None else None
        self.nodata, self.block = nodata, int(block)
        self.cache_bytes = int(cache_mb * 2**20)
        self.key = ("raster", tuple(self.paths), tuple(self.bands or ()), nodata)
        src = self.source()
        self.grid: Grid = src.grid
        self.count, self.dtype, self.dtypes, self.band_names = src.count, src.dtype, src.dtypes, src.band_names

    def source(self):
        """The open :class:`~geotool.io.raster.RasterSource` (from the pool; do not close it)."""
        from geotool.io.raster import RasterSource

        return pool().get(self.key, lambda: RasterSource(self.paths, bands=self.bands, nodata=self.nodata))

    def _decode(self, window: Window) -> tuple[np.ndarray, ...]:
        return self.source().read(window)  # every selected band in one read per file

    def _block(self, by: int, bx: int) -> tuple[np.ndarray, ...]:
        cache = block_cache(self.cache_bytes)
        key = (self.key, by, bx)
        item = cache.get(key)
        if item is None:
            b = self.block
            h, w = min(b, self.grid.height - by * b), min(b, self.grid.width - bx * b)
            item = self._decode(Window(bx * b, by * b, w, h))
            cache.put(key, item)
        return item

    def _assemble(self, row: int, col: int, height: int, width: int, outs: Sequence[np.ndarray]) -> None:
        """Copy the blocks meeting the window into ``outs`` (pre-filled; last two axes are the window)."""
        b, gh, gw = self.block, self.grid.height, self.grid.width
        r0, r1 = max(row, 0), min(row + height, gh)
        c0, c1 = max(col, 0), min(col + width, gw)
        if r1 <= r0 or c1 <= c0:
            return
        for by in range(r0 // b, (r1 - 1) // b + 1):
            for bx in range(c0 // b, (c1 - 1) // b + 1):
                item = self._block(by, bx)
                br0, bc0 = by * b, bx * b
                rr0, rr1 = max(r0, br0), min(r1, br0 + b)
                cc0, cc1 = max(c0, bc0), min(c1, bc0 + b)
                src = (slice(rr0 - br0, rr1 - br0), slice(cc0 - bc0, cc1 - bc0))
                dst = (slice(rr0 - row, rr1 - row), slice(cc0 - col, cc1 - col))
                for out, arr in zip(outs, item):
                    out[(Ellipsis,) + dst] = arr[(Ellipsis,) + src]

    def read(self, window: Window | None = None, dtype: np.dtype | str | None = None,
             fill: float = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(data (bands, rows, cols), valid (rows, cols))`` in ``window`` (default the whole grid).

        Pixels past the raster edge get ``fill`` and are invalid. ``dtype``: default the file's.
        """
        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        r, c, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
        data = np.full((self.count, h, w), fill, np.dtype(dtype) if dtype is not None else self.dtype)
        valid = np.zeros((h, w), bool)
        self._assemble(r, c, h, w, (data, valid))
        return data, valid

    def coarse_valid(self, step: int) -> np.ndarray:
        """``(ceil(H / step), ceil(W / step))`` bool: validity decimated ``step`` times (GDAL's masks read at
        that size, from overviews when the file has them), without reading the scene at full resolution."""
        shape = (-(-self.grid.height // step), -(-self.grid.width // step))
        return self.source().read_valid_decimated(shape)


class VectorWindows:
    """Label polygons (in the grid's CRS) rasterized window by window, on demand.

    Only the polygons meeting the window are burnt (an STRtree, built per process), by pixel centre with
    :func:`geotool.io.vector.rasterize_polygons` (vectorised, no per-polygon Python); later polygons
    overwrite earlier ones, as :func:`geotool.io.vector.rasterize` does. Nothing is cached: a window costs
    what a direct rasterization of it costs, and memory is the polygons, not the scene's pixels.

    Args:
        geometries: shapely geometries in ``grid``'s CRS.
        values: burn value of each (class ids).
        grid: the raster grid.
        dtype: output dtype (``uint8`` for class ids up to 255).
    """

    def __init__(self, geometries, values: np.ndarray, grid: Grid, dtype: str = "uint8") -> None:
        self.geometries = np.asarray(geometries, dtype=object)
        self.values = np.asarray(values)
        self.grid, self.dtype = grid, dtype
        self._tree = None

    def _query(self, bounds) -> np.ndarray:
        import shapely

        if self._tree is None:
            self._tree = shapely.STRtree(self.geometries)
        return np.sort(self._tree.query(shapely.box(*bounds), predicate="intersects"))

    def read(self, window: Window) -> np.ndarray:
        """``(rows, cols)`` labels of ``dtype`` in ``window`` (0 off the polygons and past the edges)."""
        from geotool.io.vector import rasterize_polygons

        sub = self.grid.window_grid(window)
        idx = self._query(sub.bounds) if len(self.geometries) else np.zeros(0, np.int64)
        return rasterize_polygons(self.geometries[idx], self.values[idx], sub.shape, sub.transform, self.dtype)

    def coarse(self, step: int) -> np.ndarray:
        """``(ceil(H / step), ceil(W / step))`` bool: cells of ``step`` pixels that a polygon covers the centre
        of, or holds a vertex of: nearly every cell holding a labelled pixel (a thin polygon may be missed
        between its vertices), vectorised, without rasterizing at full resolution."""
        import shapely

        from geotool.io.vector import rasterize_polygons

        shape = (-(-self.grid.height // step), -(-self.grid.width // step))
        if not len(self.geometries):
            return np.zeros(shape, bool)
        t = self.grid.transform
        cells = rasterize_polygons(self.geometries, np.ones(len(self.geometries), np.uint8), shape,
                                   t * t.scale(step, step)).astype(bool)
        xy = shapely.get_coordinates(self.geometries)
        col = np.floor((xy[:, 0] - t.c) / (t.a * step)).astype(np.int64)
        row = np.floor((xy[:, 1] - t.f) / (t.e * step)).astype(np.int64)
        inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
        cells[row[inside], col[inside]] = True
        return cells

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tree"] = None  # rebuilt lazily in the worker
        return state
