"""Contact sheet: a grid of composed scenes (percentile-stretched RGB) with pasted-object outlines."""

from __future__ import annotations

import math
from pathlib import Path

from geotool.io.figures import stretch_rgb
from geotool.labels import CLASS_NODATA


def contact_sheet(scenes, path: Path, ignore_index: int = CLASS_NODATA) -> Path:
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
        ax.imshow(stretch_rgb(image, valid, per_band=True), interpolation="nearest")
        pasted = instances > 0
        existing = (mask > 0) & (mask != ignore_index) & ~pasted
        for layer, colour in ((existing, "cyan"), (pasted, "yellow")):
            if layer.any():
                ax.contour(layer.astype(float), levels=[0.5], colors=colour, linewidths=0.6)
        ax.set_title(name, fontsize=8)
    fig.suptitle("OBA composites (yellow: pasted objects, cyan: labels already there)", fontsize=9)
    return save_figure(fig, path)
