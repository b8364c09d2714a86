"""Contact sheet: a grid of composed scenes (percentile-stretched RGB) with pasted-object outlines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def stretch(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(bands, H, W)`` -> ``(H, W, 3)`` 0..1 using the first three bands (or one band as grey), 2-98 %."""
    bands = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, axis=0)
    out = np.zeros(bands.shape[1:] + (3,), np.float32)
    for i, b in enumerate(bands):
        vals = b[valid] if valid.any() else b.ravel()
        lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
        out[..., i] = np.clip((b - lo) / max(hi - lo, 1e-6), 0, 1)
    out[~valid] = 0
    return out


def contact_sheet(scenes, path: Path, ignore_index: int = 255) -> Path:
    """Write a PNG grid of ``(name, image, mask, valid, instances)`` scenes.

    Pasted objects are outlined in yellow, labels the background already had in cyan.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geotool.io.figures import save_figure

    n = max(len(scenes), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, image, mask, valid, instances) in zip(axes.ravel(), scenes):
        ax.imshow(stretch(image, valid), interpolation="nearest")
        pasted = instances > 0
        existing = (mask > 0) & (mask != ignore_index) & ~pasted
        for layer, colour in ((existing, "cyan"), (pasted, "yellow")):
            if layer.any():
                ax.contour(layer.astype(float), levels=[0.5], colors=colour, linewidths=0.6)
        ax.set_title(name, fontsize=8)
    fig.suptitle("OBA composites (yellow: pasted objects, cyan: labels already there)", fontsize=9)
    return save_figure(fig, path)
