"""A cheap look at a scene's values: a lattice of windows spread over it, read without touching the rest."""

from __future__ import annotations

import numpy as np

LATTICE = 4  # windows per side
WINDOW = 256  # pixels, side of each window


def sample_values(src, lattice: int = LATTICE, window: int = WINDOW, dtype: str = "float64") -> np.ndarray:
    """The valid pixels of ``lattice`` x ``lattice`` windows of ``window`` px spread evenly over ``src``
    (a :class:`~geotool.io.raster.RasterSource`), as ``(bands, n)``; ``n`` is 0 when none is valid."""
    from rasterio.windows import Window

    h, w = src.grid.shape
    size_r, size_c = min(window, h), min(window, w)
    parts = []
    for r in np.linspace(0, h - size_r, lattice).astype(int):
        for c in np.linspace(0, w - size_c, lattice).astype(int):
            data, valid = src.read(Window(int(c), int(r), size_c, size_r), dtype=dtype)
            parts.append(data[:, valid])
    return np.concatenate(parts, axis=1) if parts else np.zeros((src.count, 0), dtype)
