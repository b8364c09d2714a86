"""The sliding-window engine: every raster-to-raster model (segmentation, NIR generation) runs through it.

How it works:
- Windows of ``window`` x ``window`` pixels lie on a lattice with stride ``window - overlap``; the last
  window of each row and column is snapped to the scene edge, and a scene smaller than one window is
  covered by one window padded past the edge (padding is invalid, and never written).
- Each window's prediction is multiplied by a smooth weight that falls towards the window border
  (a raised-cosine ramp over ``overlap`` pixels) and accumulated; the output is the weighted mean, so
  overlapping windows blend without seams.
- The scene is processed one lattice row at a time. Rows that no later window touches are final: they are
  normalised, handed to ``finalize`` with the input pixels of the same rows, and written at once, in
  blocks aligned to the 256-row GeoTIFF tiles (each output tile is written exactly once).
- Peak memory is therefore set by the window size and the scene *width* (one strip of windows plus one
  tile row), never by the scene's area; GDAL's block cache is capped while the engine runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np
import rasterio
from rasterio.windows import Window

from geotool.errors import ConfigError
from geotool.io.raster import Grid, RasterSource, RasterWriter
from geotool.progress import progress_bar

#: Output rows are written in multiples of this (the GeoTIFF tile height used by RasterWriter).
WRITE_BLOCK = 256
#: Finished rows are normalised, finalized and written this many columns at a time (a multiple of
#: WRITE_BLOCK, so writes stay tile-aligned): the temporaries no longer grow with the scene width.
EMIT_COLUMNS = 8 * WRITE_BLOCK
#: Upper bound of the GDAL block cache while the engine runs, in bytes (see :func:`gdal_cache_bytes`).
GDAL_CACHE_MAX_BYTES = 256 * 2**20
#: Lower bound of the same cache, in bytes.
GDAL_CACHE_MIN_BYTES = 16 * 2**20

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
FinalizeFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class TilingSpec:
    """Sliding-window settings, in pixels.

    Attributes:
        window: window side.
        overlap: pixels shared by neighbouring windows (blended); 0 <= overlap < window.
        batch_size: windows per model call.
        tta: average predictions over horizontal/vertical flips (4 passes per window).
        offset: shift of the window lattice up and left, 0 <= offset < stride; two offsets give two
            independent tilings of the same scene (used to check for seams).
    """

    window: int = 256
    overlap: int = 64
    batch_size: int = 8
    tta: bool = False
    offset: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"window must be a positive number of pixels, not {self.window}")
        if not 0 <= self.overlap < self.window:
            raise ConfigError(f"overlap must be between 0 and window - 1 ({self.window - 1}) pixels, not {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {self.batch_size}")
        if not 0 <= self.offset < self.stride:
            raise ConfigError(f"offset must be between 0 and the stride - 1 ({self.stride - 1}), not {self.offset}")

    @property
    def stride(self) -> int:
        """Distance between neighbouring window origins, in pixels."""
        return self.window - self.overlap


@dataclass
class TilingStats:
    """What a run cost: windows processed, seconds inside ``predict``, seconds in all."""

    n_windows: int
    predict_seconds: float
    total_seconds: float


def window_starts(length: int, window: int, stride: int, offset: int = 0) -> list[int]:
    """Start positions (pixels, may be negative with an offset) of windows covering ``[0, length)``.

    The last window is snapped to end at ``length`` when the scene is at least one window long.
    """
    starts = [-offset]
    while starts[-1] + window < length:
        nxt = starts[-1] + stride
        if nxt + window > length and length >= window:
            nxt = length - window
        starts.append(nxt)
    return starts


def plan_windows(grid: Grid, spec: TilingSpec) -> list[Window]:
    """Every window the engine runs for ``grid``, row-major (may extend past the edges)."""
    rows = window_starts(grid.height, spec.window, spec.stride, spec.offset)
    cols = window_starts(grid.width, spec.window, spec.stride, spec.offset)
    return [Window(c, r, spec.window, spec.window) for r in rows for c in cols]


def blend_weights(spec: TilingSpec) -> np.ndarray:
    """``(window, window)`` float32 weights: 1 inside, a raised-cosine ramp over ``overlap`` at the border.

    The weights never reach 0, so a pixel covered by one window only (scene edge) keeps its value.
    """
    ramp = _ramp(spec)
    return np.outer(ramp, ramp)


def _predict_with_tta(predict: PredictFn, batch: np.ndarray, valid: np.ndarray, tta: bool) -> np.ndarray:
    if not tta:
        return predict(batch, valid)
    total = None
    for axes in ((), (-1,), (-2,), (-2, -1)):
        flipped_batch = np.flip(batch, axis=axes) if axes else batch
        flipped_valid = np.flip(valid, axis=axes) if axes else valid
        out = predict(np.ascontiguousarray(flipped_batch), np.ascontiguousarray(flipped_valid))
        out = np.flip(out, axis=axes) if axes else out
        total = out.astype(np.float32) if total is None else total + out
    return total / 4.0


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_tiled(
    source: RasterSource,
    predict: PredictFn,
    out_channels: int,
    finalize: FinalizeFn,
    writers: Mapping[str, RasterWriter],
    spec: TilingSpec = TilingSpec(),
    description: str = "",
) -> TilingStats:
    """Run ``predict`` over ``source`` window by window, blend, and write ``finalize``'s outputs.

    Args:
        source: the input stack (selected bands) on its grid.
        predict: ``(batch (B, C_in, win, win) float32 raw values with invalid pixels set to 0,
            valid (B, win, win) bool) -> (B, C_out, win, win)`` (e.g. class probabilities).
        out_channels: ``C_out``.
        finalize: ``(blended (C_out, h, w) float32, raw input (C_in, h, w) float32, valid (h, w) bool)
            -> {sink: array (bands, h, w) or (h, w)}`` for a block of full-width rows; must set nodata
            where ``valid`` is False.
        writers: entered :class:`RasterWriter` objects on ``source.grid``, one per sink name.
        spec: window, overlap, batch size, flip TTA, lattice offset.
        description: progress bar label.

    Returns:
        TilingStats with the number of windows and the seconds spent inside ``predict`` and in all.
    """
    start = time.perf_counter()
    grid = source.grid
    height, width = grid.height, grid.width
    win = spec.window
    row_starts = window_starts(height, win, spec.stride, spec.offset)
    col_starts = window_starts(width, win, spec.stride, spec.offset)
    col_lo = col_starts[0]
    strip_width = col_starts[-1] + win - col_lo
    ramp = _ramp(spec)
    weights = np.outer(ramp, ramp)
    # The weights are separable and the lattice is a product of row and column starts, so the sum of
    # weights at (r, c) is row_sum[r] * col_sum[c]: no 2-D weight buffer is needed.
    row_sum = _coverage(row_starts, ramp, height)
    col_sum = _coverage(col_starts, ramp, width)

    capacity = win + WRITE_BLOCK  # accumulator rows: [emitted, emitted + capacity)
    acc = np.zeros((out_channels, capacity, width), dtype=np.float32)
    emitted = 0
    predict_seconds = 0.0
    n_windows = len(row_starts) * len(col_starts)

    # An integer GDAL_CACHEMAX is read by GDAL as bytes (a bare number of MB would leave a cache of a few bytes);
    # rasterio.Env restores the process's cache size when the run ends.
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes(source, writers, win)), progress_bar(description or "windows", n_windows) as bar:
        for i, r in enumerate(row_starts):
            strip, strip_valid = source.read(Window(col_lo, r, strip_width, win))  # native dtype
            for cols in _batches(col_starts, spec.batch_size):
                offsets = [c - col_lo for c in cols]
                batch_valid = np.stack([strip_valid[:, o : o + win] for o in offsets])
                batch = np.stack([strip[:, :, o : o + win] for o in offsets]).astype(np.float32)
                batch = np.where(batch_valid[:, None], batch, np.float32(0.0))
                t0 = time.perf_counter()
                pred = np.asarray(_predict_with_tta(predict, batch, batch_valid, spec.tta), dtype=np.float32)
                predict_seconds += time.perf_counter() - t0
                if pred.shape != (len(cols), out_channels, win, win):
                    raise ValueError(
                        f"predict returned shape {pred.shape}, expected {(len(cols), out_channels, win, win)}"
                    )
                for k, c in enumerate(cols):
                    _accumulate(acc, pred[k], weights, r - emitted, c, height - emitted, width)
                bar.advance(len(cols))
            next_row = row_starts[i + 1] if i + 1 < len(row_starts) else height
            final = min(next_row, height) - emitted
            if i + 1 < len(row_starts):
                final = (final // WRITE_BLOCK) * WRITE_BLOCK
            if final > 0:
                _emit(source, finalize, writers, acc[:, :final], row_sum[emitted : emitted + final], col_sum, emitted)
                acc[:, : capacity - final] = acc[:, final:]
                acc[:, capacity - final :] = 0.0
                emitted += final
    return TilingStats(n_windows, predict_seconds, time.perf_counter() - start)


def gdal_cache_bytes(source: RasterSource, writers: Mapping[str, RasterWriter], window: int) -> int:
    """GDAL block cache for one run, in bytes: the input tile rows a strip of windows touches plus the
    output tile rows being written (all at full scene width), with headroom; between
    ``GDAL_CACHE_MIN_BYTES`` and ``GDAL_CACHE_MAX_BYTES``. A fixed large cache would fill with blocks of a
    wide scene and make peak memory grow with the scene rather than with the window."""
    rows = window + 2 * WRITE_BLOCK  # a window strip straddles tile rows above and below
    per_px = source.count * source.dtype.itemsize + sum(w.count * w.dtype.itemsize for w in writers.values())
    need = 1.5 * rows * source.grid.width * per_px
    return int(min(max(need, GDAL_CACHE_MIN_BYTES), GDAL_CACHE_MAX_BYTES))


def _ramp(spec: TilingSpec) -> np.ndarray:
    """1-D blending weights along one window side (see :func:`blend_weights`)."""
    n, ramp = spec.window, spec.overlap
    if ramp == 0:
        return np.ones(n, dtype=np.float32)
    i = np.arange(n, dtype=np.float64)
    dist = np.minimum(i + 0.5, n - i - 0.5)  # distance to the nearest window border
    t = np.clip(dist / ramp, 0.0, 1.0)
    return np.maximum(0.5 - 0.5 * np.cos(np.pi * t), 1e-3).astype(np.float32)


def _coverage(starts: list[int], ramp: np.ndarray, length: int) -> np.ndarray:
    """Sum of the 1-D weights of every window over ``[0, length)``."""
    total = np.zeros(length, dtype=np.float32)
    for s in starts:
        lo, hi = max(s, 0), min(s + len(ramp), length)
        total[lo:hi] += ramp[lo - s : hi - s]
    return total


def _accumulate(acc: np.ndarray, pred: np.ndarray, weights: np.ndarray, r: int, c: int, rows_left: int, width: int) -> None:
    """Add ``pred * weights`` at accumulator row ``r`` (relative), scene column ``c``, clipped to the scene."""
    win = weights.shape[0]
    r0, c0 = max(r, 0), max(c, 0)
    r1, c1 = min(r + win, rows_left), min(c + win, width)
    if r1 <= r0 or c1 <= c0:
        return
    wr, wc = slice(r0 - r, r1 - r), slice(c0 - c, c1 - c)
    acc[:, r0:r1, c0:c1] += pred[:, wr, wc] * weights[wr, wc]


def _emit(
    source: RasterSource,
    finalize: FinalizeFn,
    writers: Mapping[str, RasterWriter],
    acc: np.ndarray,
    row_sum: np.ndarray,
    col_sum: np.ndarray,
    row: int,
) -> None:
    """Normalise finished rows (``acc`` / weight sums), finalize them with their input pixels and write
    every sink, ``EMIT_COLUMNS`` columns at a time."""
    n_rows, width = acc.shape[1], acc.shape[2]
    for c0 in range(0, width, EMIT_COLUMNS):
        c1 = min(c0 + EMIT_COLUMNS, width)
        blended = acc[:, :, c0:c1] / np.outer(row_sum, col_sum[c0:c1])
        window = Window(c0, row, c1 - c0, n_rows)
        raw, valid = source.read(window, dtype=np.float32)
        raw[:, ~valid] = 0.0
        outputs = finalize(blended, raw, valid)
        missing = set(writers) - set(outputs)
        if missing:
            raise ValueError(f"finalize returned no array for {sorted(missing)}")
        for name, writer in writers.items():
            writer.write(np.asarray(outputs[name]), window)
