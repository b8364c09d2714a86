"""The sliding-window engine: every raster-to-raster model (segmentation, NIR generation) runs through it.

How it works:
- Windows of ``window`` x ``window`` pixels lie on a lattice with stride ``window - overlap``; the last
  window of each row and column is snapped to the scene edge, and a scene smaller than one window is
  covered by one window padded past the edge (padding is invalid, and never written).
- Each window's prediction is multiplied by a smooth weight that falls towards the window border
  (a raised-cosine ramp over ``overlap`` pixels) and accumulated; the output is the weighted mean, so
  overlapping windows blend without seams.
- The scene is processed one lattice row (a strip of windows) at a time. Each input row is read once, all
  selected bands in one read per file: a strip reads only the rows the previous strip did not, and the
  rows are kept until they are written, so ``finalize`` gets its input pixels without a second read.
  Rows that no later window touches are final: they are normalised, handed to ``finalize`` with the input
  pixels of the same rows, and written at once, in blocks aligned to the 256-row GeoTIFF tiles (each
  output tile is written exactly once).
- With ``pipeline_depth`` > 0 (the default) the work runs as a small pipeline of threads joined by
  bounded queues: a reader fetches the next rows and cuts them into model batches while the calling
  thread runs the model, a blender accumulates and normalises, a writer finalizes and hands blocks to
  GDAL (which compresses them on its own threads, see ``RasterWriter``). Every stage keeps the serial order, so the outputs are the same
  bits as with ``pipeline_depth=0``, which runs everything in the calling thread. The model is always
  called from the calling thread (a GPU context, torch's thread settings and inference mode stay there).
- Peak memory is therefore set by the window size and the scene *width* (one strip of windows, one tile
  row and at most ``pipeline_depth`` queued items per stage), never by the scene's area; GDAL's block
  cache is capped while the engine runs.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
from rasterio.windows import Window

from geotool.errors import ConfigError
from geotool.io.atomic import signals_deferred
from geotool.io.gdal_cache import gdal_cache
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


def class_argmax(blended: np.ndarray) -> np.ndarray:
    """``(K, h, w)`` class scores -> ``(h, w)`` uint8 index of the largest, exactly as ``argmax(0)`` (first
    maximum on ties, a NaN counts as the maximum). Two classes are one comparison, which NumPy runs many
    times faster than an argmax along the leading axis; it is the costliest step of finishing a class raster."""
    if blended.shape[0] != 2:
        return blended.argmax(0).astype(np.uint8)
    cls = np.greater(blended[1], blended[0]).view(np.uint8)
    nan1 = np.isnan(blended[1])
    if nan1.any():  # argmax picks the first NaN: class 1 only where class 0 is not NaN
        cls = np.where(nan1 & ~np.isnan(blended[0]), np.uint8(1), cls)
    return cls


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


@dataclass
class TilingStats:
    """What a run cost: windows processed, seconds inside ``predict``, seconds in all; and the thumbnails
    asked for with ``thumbnail_step`` (``"input"``: raw input, ``"valid"``: validity, and one per named sink),
    every ``thumbnail_step``-th row and column starting at 0, taken from the rows as they were written."""

    n_windows: int
    predict_seconds: float
    total_seconds: float
    thumbnails: dict[str, np.ndarray] | None = None


#: Items each pipeline queue holds (0: everything in the calling thread). Two lets a stage work on one item
#: while the next waits, which is all the overlap there is; more only adds memory.
PIPELINE_DEPTH = 2


def run_tiled(
    source: RasterSource,
    predict: PredictFn,
    out_channels: int,
    finalize: FinalizeFn,
    writers: Mapping[str, RasterWriter],
    spec: TilingSpec = TilingSpec(),
    description: str = "",
    pipeline_depth: int = PIPELINE_DEPTH,
    thumbnail_step: int = 0,
    thumbnail_sinks: Iterable[str] = (),
    finalize_input: bool = True,
) -> TilingStats:
    """Run ``predict`` over ``source`` window by window, blend, and write ``finalize``'s outputs.

    Args:
        source: the input stack (selected bands) on its grid.
        predict: ``(batch (B, C_in, win, win) float32 raw values with invalid pixels set to 0,
            valid (B, win, win) bool) -> (B, C_out, win, win)`` (e.g. class probabilities). Always called
            from the calling thread, one batch at a time; it must return a new array each call (the blender
            may still be adding up the previous batch while the next one runs).
        out_channels: ``C_out``.
        finalize: ``(blended (C_out, h, w) float32, raw input (C_in, h, w) float32 with invalid pixels 0,
            valid (h, w) bool) -> {sink: array (bands, h, w) or (h, w)}`` for a block of rows; must set
            nodata where ``valid`` is False. Called in order, from the writer thread when pipelined.
        writers: entered :class:`RasterWriter` objects on ``source.grid``, one per sink name.
        spec: window, overlap, batch size, flip TTA, lattice offset.
        description: progress bar label.
        pipeline_depth: queue length between the reader, model, blender and writer stages; 0 runs them
            all in the calling thread, one after the other (same outputs, no overlap).
        thumbnail_step: when > 0, keep every ``thumbnail_step``-th row and column of the input, its validity
            and of the sinks in ``thumbnail_sinks`` (for previews: no second read of anything).
        thumbnail_sinks: sink names to keep thumbnails of.
        finalize_input: False when ``finalize`` does not use the input pixels: it gets None for them, and the
            engine skips converting every input row to float32 for it.

    Returns:
        TilingStats with the number of windows, the seconds spent inside ``predict`` and in all, and the
        thumbnails when asked for.
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
    emits = _emission_plan(row_starts, height)
    n_windows = len(row_starts) * len(col_starts)
    thumbs = _Thumbnails(grid, source.count, writers, thumbnail_step, thumbnail_sinks) if thumbnail_step > 0 else None

    def read_rows() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """The rows each strip needs and the strip before did not read: ``(first row, data, valid)``."""
        lo = row_starts[0]
        for r in row_starts:
            hi = r + win
            if hi > lo:
                data, valid = source.read(Window(col_lo, lo, strip_width, hi - lo))  # native dtype, all bands
            else:
                data = np.empty((source.count, 0, strip_width), source.dtype)
                valid = np.empty((0, strip_width), bool)
            yield lo, data, valid
            lo = max(lo, hi)

    def batches() -> Iterator[tuple]:
        """Model batches in order, each strip followed by its emission: ``("windows", row, cols, batch, valid)``
        and ``("emit", lo, hi, data, valid)`` with copies of the input rows ``[lo, hi)`` (data only when
        finalize or the thumbnails need it), so no queued item keeps a whole row buffer alive. Runs in the
        reader thread when pipelined, so the calling thread only runs the model."""
        buf_lo, buf_data, buf_valid = row_starts[0], None, None
        for i, (r, (lo, data, valid)) in enumerate(zip(row_starts, read_rows())):
            # rows below the last emission are written and no later window reaches them
            keep = (emits[i - 1][1] if i else buf_lo) - buf_lo
            if buf_data is None:
                buf_data, buf_valid = data, valid
            else:  # only this thread sees the buffer: what goes on to the blender is copied out of it
                buf_data = np.concatenate([buf_data[:, keep:], data], axis=1)
                buf_valid = np.concatenate([buf_valid[keep:], valid], axis=0)
                buf_lo += keep
            top = r - buf_lo
            strip, strip_valid = buf_data[:, top : top + win], buf_valid[top : top + win]
            for cols in _batches(col_starts, spec.batch_size):
                offsets = [c - col_lo for c in cols]
                batch_valid = np.stack([strip_valid[:, o : o + win] for o in offsets])
                batch = np.stack([strip[:, :, o : o + win] for o in offsets], dtype=np.float32)  # one pass
                np.copyto(batch, np.float32(0.0), where=~batch_valid[:, None])  # in place: one pass, not three
                yield "windows", r, cols, batch, batch_valid
            lo_e, hi_e = emits[i]
            rows = slice(lo_e - buf_lo, hi_e - buf_lo)
            rows_data = buf_data[:, rows].copy() if need_input else None
            yield "emit", lo_e, hi_e, rows_data, buf_valid[rows].copy()

    def write_block(item: tuple[Window, np.ndarray, np.ndarray, np.ndarray]) -> None:
        window, blended, raw, valid = item
        outputs = finalize(blended, raw, valid)
        missing = set(writers) - set(outputs)
        if missing:
            raise ValueError(f"finalize returned no array for {sorted(missing)}")
        for name, writer in writers.items():
            writer.write(np.asarray(outputs[name]), window)
        if thumbs is not None:
            thumbs.add_outputs(window, outputs)

    need_input = finalize_input or thumbs is not None
    blender = _Blender(out_channels, win, width, height, weights, row_sum, col_sum, col_lo, finalize_input, thumbs)
    predict_seconds = 0.0
    # GDAL reads the cache size in bytes (a bare number of MB would leave a cache of a few bytes); gdal_cache
    # restores the process's own size when the run ends, also while another thread (the previous scene's COG
    # finishing, see geotool.io.finishing) holds some of the cache.
    with gdal_cache(gdal_cache_bytes(source, writers, win)), \
            progress_bar(description or "windows", n_windows) as bar, \
            _Pipeline(pipeline_depth) as pipe:
        writer_stage = pipe.stage(write_block, "geotool-writer")
        blend_stage = pipe.stage(lambda item: blender.handle(item, writer_stage.put), "geotool-blender")
        for item in pipe.prefetch(batches(), "geotool-reader"):
            if item[0] == "emit":
                blend_stage.put(item)
                continue
            _, r, cols, batch, batch_valid = item
            t0 = time.perf_counter()
            pred = np.asarray(_predict_with_tta(predict, batch, batch_valid, spec.tta), dtype=np.float32)
            predict_seconds += time.perf_counter() - t0
            if pred.shape != (len(cols), out_channels, win, win):
                raise ValueError(f"predict returned shape {pred.shape}, expected {(len(cols), out_channels, win, win)}")
            blend_stage.put(("windows", r, cols, pred))
            bar.advance(len(cols))
    return TilingStats(n_windows, predict_seconds, time.perf_counter() - start,
                       thumbs.arrays if thumbs is not None else None)


def _emission_plan(row_starts: list[int], height: int) -> list[tuple[int, int]]:
    """Scene rows ``[lo, hi)`` final after each strip: no later window reaches them. Whole 256-row tile
    rows until the last strip, which finishes the scene."""
    plan, emitted = [], 0
    for i in range(len(row_starts)):
        if i + 1 < len(row_starts):
            final = ((min(row_starts[i + 1], height) - emitted) // WRITE_BLOCK) * WRITE_BLOCK
        else:
            final = height - emitted
        plan.append((emitted, emitted + max(final, 0)))
        emitted += max(final, 0)
    return plan


class _Blender:
    """Accumulates weighted predictions over ``window + WRITE_BLOCK`` rows of the scene's width, and turns
    finished rows into ``(window, blended, raw, valid)`` blocks ``EMIT_COLUMNS`` wide."""

    def __init__(self, channels, win, width, height, weights, row_sum, col_sum, col_lo, with_input, thumbs) -> None:
        self.capacity = win + WRITE_BLOCK  # accumulator rows: [emitted, emitted + capacity)
        self.acc = np.zeros((channels, self.capacity, width), dtype=np.float32)
        self.emitted = 0
        self.width, self.height, self.weights = width, height, weights
        self.row_sum, self.col_sum, self.col_lo = row_sum, col_sum, col_lo
        self.with_input, self.thumbs = with_input, thumbs

    def handle(self, item: tuple, emit: Callable[[Any], None]) -> None:
        if item[0] == "windows":
            _, r, cols, pred = item
            for k, c in enumerate(cols):
                _accumulate(self.acc, pred[k], self.weights, r - self.emitted, c, self.height - self.emitted, self.width)
            return
        _, lo, hi, rows_data, rows_valid = item
        final = hi - lo
        if final <= 0:
            return
        acc, row_sum = self.acc[:, :final], self.row_sum[lo:hi]
        for c0 in range(0, self.width, EMIT_COLUMNS):
            c1 = min(c0 + EMIT_COLUMNS, self.width)
            blended = acc[:, :, c0:c1] / np.outer(row_sum, self.col_sum[c0:c1])
            cs = slice(c0 - self.col_lo, c1 - self.col_lo)
            valid = rows_valid[:, cs].copy()
            window = Window(c0, lo, c1 - c0, final)
            raw = None
            if self.with_input:
                raw = rows_data[:, :, cs].astype(np.float32)
                raw[:, ~valid] = 0.0
            if self.thumbs is not None:
                self.thumbs.add_input(window, rows_data[:, :, cs], valid)
            emit((window, blended, raw, valid))
        self.acc[:, : self.capacity - final] = self.acc[:, final:]
        self.acc[:, self.capacity - final :] = 0.0
        self.emitted += final


class _Thumbnails:
    """Every ``step``-th row and column (from 0) of the input, its validity and some sinks, filled block by block."""

    def __init__(self, grid: Grid, channels: int, writers: Mapping[str, RasterWriter], step: int, sinks: Iterable[str]) -> None:
        self.step = step
        h, w = -(-grid.height // step), -(-grid.width // step)
        self.arrays: dict[str, np.ndarray] = {"input": np.zeros((channels, h, w), np.float32), "valid": np.zeros((h, w), bool)}
        for name in sinks:
            writer = writers[name]
            self.arrays[name] = np.zeros((writer.count, h, w), writer.dtype)

    def _lattice(self, window: Window, shape: tuple[int, int]):
        """Source slices of a block's pixels on the thumbnail lattice and where they go in the thumbnail."""
        s = self.step
        r0, c0 = int(window.row_off), int(window.col_off)
        rs, cs = slice((-r0) % s, None, s), slice((-c0) % s, None, s)  # the block's first lattice row and column
        n_r, n_c = len(range(*rs.indices(shape[0]))), len(range(*cs.indices(shape[1])))
        tr, tc = -(-r0 // s), -(-c0 // s)
        return rs, cs, (slice(tr, tr + n_r), slice(tc, tc + n_c))

    def add_input(self, window: Window, data: np.ndarray, valid: np.ndarray) -> None:
        """The input (native dtype; invalid pixels become 0, as ``finalize`` sees them) and its validity."""
        rs, cs, dst = self._lattice(window, valid.shape)
        part = valid[rs, cs]
        self.arrays["valid"][dst] = part
        self.arrays["input"][(slice(None), *dst)] = np.where(part, data[:, rs, cs].astype(np.float32), np.float32(0))

    def add_outputs(self, window: Window, outputs: Mapping[str, np.ndarray]) -> None:
        for name, arr in self.arrays.items():
            if name in ("input", "valid"):
                continue
            out = np.asarray(outputs[name])
            out = out[None] if out.ndim == 2 else out
            rs, cs, dst = self._lattice(window, out.shape[1:])
            arr[(slice(None), *dst)] = out[:, rs, cs]


class _Aborted(Exception):
    """Another stage failed: this one stops (the failure itself is raised in the calling thread)."""


_END = object()


class _Pipeline:
    """Stages joined by bounded queues, each in one thread, or all inline in the calling thread (depth 0).

    The first failure anywhere stops every stage and is raised in the calling thread when the ``with``
    block ends; on success the block waits for every stage to drain, in the order they were created
    last-first (a stage's consumer is created before it)."""

    def __init__(self, depth: int) -> None:
        if depth < 0:
            raise ConfigError(f"pipeline depth must be 0 (serial) or more, not {depth}")
        self.depth = depth
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self.stages: list[_Stage] = []
        self.threads: list[threading.Thread] = []

    def stage(self, fn: Callable[[Any], None], name: str) -> "_Stage":
        stage = _Stage(self, fn, name)
        self.stages.append(stage)
        return stage

    def prefetch(self, items: Iterator, name: str) -> Iterator:
        """``items``, produced in a thread up to ``depth`` ahead (or lazily, inline, at depth 0)."""
        if self.depth == 0:
            return items
        q: queue.Queue = queue.Queue(self.depth)

        def produce() -> None:
            try:
                for item in items:
                    self._put(q, item)
                self._put(q, _END)
            except _Aborted:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                self.fail(exc)

        self._start(produce, name)

        def consume() -> Iterator:
            while True:
                item = self._get(q)
                if item is _END:
                    return
                yield item

        return consume()

    def fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.abort.set()

    def _start(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with signals_deferred():  # Ctrl-C or SIGTERM inside start() would leave a thread __exit__ cannot join
            thread.start()
            self.threads.append(thread)
        return thread

    def _put(self, q: queue.Queue, item: Any) -> None:
        while True:  # short timeouts: a failed stage elsewhere must not leave this one blocked on a full queue
            if self.abort.is_set():
                raise _Aborted
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue) -> Any:
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def __enter__(self) -> "_Pipeline":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                for stage in reversed(self.stages):  # a stage's consumer was created before it: drain producers first
                    stage.close()
            except _Aborted:
                pass
        elif exc_type is not _Aborted:
            self.fail(exc)  # the calling thread failed: stop the other stages, then let its exception through
        self.abort.set()  # nothing is left to do: a producer still waiting to put stops
        for thread in self.threads:
            thread.join()
        if self.errors and exc_type in (None, _Aborted):
            raise self.errors[0]
        return False


class _Stage:
    """One pipeline stage: ``put(item)`` runs ``fn(item)`` in this stage's thread, in order (or at once, inline)."""

    def __init__(self, pipe: _Pipeline, fn: Callable[[Any], None], name: str) -> None:
        self.pipe, self.fn = pipe, fn
        self.q: queue.Queue | None = None
        self.thread: threading.Thread | None = None
        if pipe.depth > 0:
            self.q = queue.Queue(pipe.depth)
            self.thread = pipe._start(self._loop, name)

    def put(self, item: Any) -> None:
        if self.q is None:
            self.fn(item)
        else:
            self.pipe._put(self.q, item)

    def close(self) -> None:
        """Wait until every item put so far is done (the stage's thread then ends)."""
        if self.q is not None:
            self.pipe._put(self.q, _END)
            while self.thread.is_alive():
                self.thread.join(0.05)
                if self.pipe.abort.is_set():
                    raise _Aborted

    def _loop(self) -> None:
        try:
            while True:
                item = self.pipe._get(self.q)
                if item is _END:
                    return
                self.fn(item)
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            self.pipe.fail(exc)


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
