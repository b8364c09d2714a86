"""Background windows: label-free windows mined from labelled scenes, or windows of background GeoTIFFs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geotool.oba.config import OBAConfig


@dataclass(frozen=True)
class BackgroundWindow:
    """A candidate background: which source (index into the pipeline's list) and which pixel window."""

    source: int
    col: int
    row: int
    width: int
    height: int


def lattice(width: int, height: int, size: int, stride: int) -> list[tuple[int, int, int, int]]:
    """``(col, row, w, h)`` windows of ``size`` (clamped to the raster) on a lattice that reaches the far edges."""
    w, h = min(size, width), min(size, height)

    def starts(n: int, s: int) -> list[int]:
        out = list(range(0, n - s + 1, stride))
        if out[-1] != n - s:
            out.append(n - s)
        return out

    return [(c, r, w, h) for r in starts(height, h) for c in starts(width, w)]


# max_label_fraction None ("auto"): the fractions tried in turn until a scene set gives windows (dense scenes,
# e.g. a city tile, have no label-free window at all)
AUTO_LABEL_FRACTIONS = (0.0, 0.05, 0.15, 0.3)


def mine_windows(src, source_index: int, gdf, cfg: OBAConfig, max_label_fraction: float = 0.0,
                 max_windows: int = 4096) -> list[BackgroundWindow]:
    """Windows of ``src`` far enough from every labelled object and with enough valid pixels.

    Args:
        src: open RasterSource.
        gdf: labels in ``src``'s CRS, or None for a pure background raster.
        cfg: ``scene_size``, ``background_stride``, ``background_buffer`` (pixels) and ``min_valid_fraction``.
        max_label_fraction: windows may hold labelled pixels up to this fraction (0 = strictly label-free).
        max_windows: cap on candidates checked (evenly thinned), which bounds the reading cost.
    """
    from rasterio.windows import Window
    from shapely.geometry import box

    from geotool.io.vector import rasterize

    grid = src.grid
    stride = cfg.background_stride or max(cfg.scene_size // 2, 1)
    cands = lattice(grid.width, grid.height, cfg.scene_size, stride)
    if len(cands) > max_windows:
        keep = np.linspace(0, len(cands) - 1, max_windows).round().astype(int)
        cands = [cands[i] for i in keep]
    buffer = cfg.background_buffer * max(grid.res)
    has_labels = gdf is not None and len(gdf) > 0
    out = []
    for col, row, w, h in cands:
        window = Window(col, row, w, h)
        if has_labels:
            sub = grid.window_grid(window)
            hits = gdf.sindex.query(box(*sub.bounds).buffer(buffer), predicate="intersects")
            if len(hits) and max_label_fraction == 0:
                continue
            if len(hits):
                burnt = rasterize(gdf.iloc[np.sort(hits)], grid, window=window)
                if burnt.mean() > max_label_fraction:
                    continue
        _, valid = src.read(window)
        if valid.mean() < cfg.min_valid_fraction:
            continue
        out.append(BackgroundWindow(source_index, col, row, w, h))
    return out
