"""PNG figures (previews, plots, contact sheets) written atomically (temp file in the target folder, then rename)."""

from __future__ import annotations

import os
from pathlib import Path

from geotool.errors import OutputError
from geotool.io.atomic import atomic_path

FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def new_figure(*args, **kwargs):
    """``plt.subplots`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the extension: .png, .pdf, .svg, .jpg) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        plt.close(fig)
        raise OutputError(f"{path}: unsupported figure extension {path.suffix or '(none)'}; use .png")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    finally:
        plt.close(fig)
    return path
